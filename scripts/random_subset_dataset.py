#!/usr/bin/env python3
"""The null control of reward-filtered fine-tuning: a data set of N images drawn at random
(keyed by --seed) from a samples file, with no regard to any reward.

  random_subset_dataset.py SAMPLES N KINDS_FROM OUT [--seed S] [--images policy|compare]

SAMPLES is what `evaluate --samples-out` writes; KINDS_FROM is any data set file that holds the
same prompts (e.g. `treerpo-shapes dataset --split train`), read for each prompt's task kind.
OUT has the layout of treerpo-shapes(1)'s DATA SET FILE, so `update --objective sft` trains on it
exactly as on `treerpo-shapes select`'s output of the same samples. Needs h5py and numpy
(/usr/bin/python3) and HDF5_PLUGIN_PATH for the Zstandard filter (treerpo(7)).
"""
import argparse
import json
import sys

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("samples")
    ap.add_argument("count", type=int)
    ap.add_argument("kinds_from")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--images", default="policy", choices=["policy", "compare"])
    a = ap.parse_args()
    with h5py.File(a.samples, "r") as s:
        if s.attrs.get("treerpo_format") != "samples":
            sys.exit(f"{a.samples}: treerpo_format is not 'samples' (evaluate --samples-out)")
        texts = [t.decode() if isinstance(t, bytes) else t for t in s["text"][:]]
        images = s[a.images]["images"][:]
    with h5py.File(a.kinds_from, "r") as k:
        kind_dtype = k["kind"].dtype
        known = dict(zip((t.decode() if isinstance(t, bytes) else t for t in k["prompts/text"][:]), k["kind"][:]))
    if not 0 < a.count <= len(texts):
        sys.exit(f"N must be in 1..{len(texts)}, got {a.count}")
    missing = sorted({t for t in texts if t not in known})
    if missing:
        sys.exit(f"{a.kinds_from}: /prompts/text: no kind for prompt '{missing[0]}' of {a.samples}")
    rows = np.sort(np.random.default_rng(a.seed).choice(len(texts), size=a.count, replace=False))
    chunk = max(1, 65536 // int(np.prod(images.shape[1:])))
    with h5py.File(a.out, "w") as o:
        o.attrs["treerpo_format"] = "dataset"
        o.attrs["treerpo_format_version"] = np.array([1, 0], dtype=np.int64)
        o.create_dataset("prompts/text", data=[texts[i] for i in rows], dtype=h5py.string_dtype())
        o.create_dataset("prompts/id", data=np.arange(a.count, dtype=np.int64))
        # The storage of treerpo-shapes(1)'s DATA SET FILE: byte shuffle, Zstandard 3, Fletcher32.
        filters = dict(shuffle=True, compression=32015, compression_opts=(3,), fletcher32=True)
        o.create_dataset("images", data=images[rows], chunks=(min(chunk, a.count),) + images.shape[1:], **filters)
        o.create_dataset("kind", data=np.array([known[texts[i]] for i in rows]), dtype=kind_dtype,
                         chunks=(a.count,), **filters)
        record = {"tool": "random_subset_dataset.py", "argv": sys.argv[1:], "seed": a.seed}
        o.create_dataset("provenance", data=[json.dumps(record)], dtype=h5py.string_dtype())
    print(f"kept {a.count} of {len(texts)} images of {a.samples} at random (seed {a.seed}) in {a.out}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
