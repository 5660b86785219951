#!/usr/bin/env python3
"""write_prompt_file.py -- example: write a treerpo HDF5 prompt file (man treerpo-prompts(5)).

A real pipeline replaces `encode` with its text encoder (e.g. the CLIP/T5 encoders of SD3,
run once in Python) and keeps the rest. Needs only h5py and numpy:

    python3 schemas/write_prompt_file.py prompts.h5 [--tokens 8] [--dim 16] [--pooled 12]
"""
import argparse

import h5py
import numpy as np

PROMPTS = [
    "a red circle",
    "two blue squares",
    "a green triangle left of a yellow cross",
    "three white rings",
    "a purple square above an orange circle",
]


def encode(text, tokens, dim, rng):
    """Stand-in text encoder: one pseudo-embedding per word, zero padding, and a mask."""
    words = text.split()[:tokens]
    hidden = np.zeros((tokens, dim), dtype=np.float32)
    hidden[: len(words)] = rng.standard_normal((len(words), dim)).astype(np.float32)
    mask = np.zeros(tokens, dtype=np.uint8)
    mask[: len(words)] = 1
    return hidden, mask


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--tokens", type=int, default=8)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--pooled", type=int, default=12, help="pooled embedding size (0: none)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    encoded = [encode(p, args.tokens, args.dim, rng) for p in PROMPTS]
    with h5py.File(args.output, "w") as f:
        f.attrs["treerpo_format"] = "prompts"
        f.attrs["treerpo_format_version"] = np.array([1, 0], dtype="<i8")
        g = f.create_group("prompts")
        g["text"] = np.array(PROMPTS, dtype=h5py.string_dtype())
        g["id"] = np.arange(len(PROMPTS), dtype="<i8")
        g["conditioning"] = np.stack([h for h, _ in encoded])      # [P, L, D] float32
        g["mask"] = np.stack([m for _, m in encoded])              # [P, L] uint8, 1 = real token
        if args.pooled:
            g["pooled"] = rng.standard_normal((len(PROMPTS), args.pooled)).astype(np.float32)


if __name__ == "__main__":
    main()
