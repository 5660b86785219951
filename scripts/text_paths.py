#!/usr/bin/python3
"""text_paths.py -- by which path does the prompt reach the built-in model's velocity, and does
word order reach it at all? The model reads text twice: the text tokens enter every joint block's
attention, and their masked mean (the pooled vector, a bag of words by construction) joins the
timestep in every block's modulation. On colour-attribute renders noised to several sigma, with one
fixed noise per image, it compares the velocity for the prompt against:

  null       the null prompt on both paths: the prompt's whole effect, E = |v - v_null|;
  cut_pool   the pooled vector of the null prompt, the tokens of the prompt: the pooled path's share;
  cut_attn   the tokens of the null prompt, the pooled vector of the prompt: the attention's share;
  swap       the prompt with its two colours swapped ("a blue circle and a red square" for "a red
             circle and a blue square"), both paths: how much of E word order carries.

Each share is |v - v_variant| / E over all renders. A model that reads only a bag of words has
swap = 0 exactly (attention and the mean are blind to the order of their keys); binding colour to
shape needs it well above 0 at the low sigma where shapes are drawn.

  text_paths.py POLICY RENDERS [--count 64] [--seed 0] [--sigmas 0.9,0.7,0.5,0.3,0.15]

RENDERS is a data set file (`treerpo-shapes dataset`); its colour-attribute rows are used. Prints a
tab-separated table: sigma, E (root-sum-square over the renders), the three shares. Uses the
independent port tests/bench/torch_port.py (sin-cos image positions, output convolution, velocity
prediction: the shipped model's kind). Run with Debian's /usr/bin/python3 (python3-torch, h5py) and
HDF5_PLUGIN_PATH set to the build's hdf5-plugins (the Zstandard filter).
"""
import argparse
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "bench"))
import torch_port  # noqa: E402  (the model, ported line by line from lib/model/builtin_dit.cpp)
import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

COLOUR_ATTR = re.compile(r"^a (\w+) (\w+) and a (\w+) (\w+)$")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("policy")
    ap.add_argument("renders")
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sigmas", default="0.9,0.7,0.5,0.3,0.15")
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, cfg, vocab = torch_port.load_policy(a.policy)
    with h5py.File(a.renders, "r") as f:
        texts = [t.decode() if isinstance(t, bytes) else t for t in f["prompts/text"][()]]
        rows = [i for i, t in enumerate(texts) if COLOUR_ATTR.match(t)][:a.count]
        if not rows:
            sys.exit(f"text_paths.py: {a.renders}: /prompts/text: no colour-attribute prompt")
        images = torch.from_numpy(f["images"][rows]).permute(0, 3, 1, 2).float() / 127.5 - 1
    prompts = [texts[i] for i in rows]
    swapped = [COLOUR_ATTR.sub(r"a \3 \2 and a \1 \4", t) for t in prompts]
    L = cfg["max_text_tokens"]
    with torch.no_grad():
        enc, mask = {}, {}
        for name, t in (("prompt", prompts), ("swap", swapped), ("null", [""] * len(prompts))):
            ids, mask[name] = torch_port.encode(t, vocab, L)
            enc[name] = model.encode_text(ids, mask[name])
        gen = torch.Generator().manual_seed(a.seed)
        print("sigma\tE\tcut_pool\tcut_attn\tswap")
        for sigma in (float(s) for s in a.sigmas.split(",")):
            s = torch.full((len(prompts),), sigma)
            x = (1 - sigma) * images + sigma * torch.randn(images.shape, generator=gen)

            def v(tokens_of, pooled_of):
                return model.denoise(x, s, enc[tokens_of][0], enc[pooled_of][1], mask[tokens_of])

            full = v("prompt", "prompt")
            effect = float((full - v("null", "null")).norm())
            share = [float((full - w).norm()) / effect if effect > 0 else float("nan")
                     for w in (v("prompt", "null"), v("null", "prompt"), v("swap", "swap"))]
            print(f"{sigma:g}\t{effect:.4g}\t" + "\t".join(f"{x:.4f}" for x in share))
    return 0


if __name__ == "__main__":
    sys.exit(main())
