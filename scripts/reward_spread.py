#!/usr/bin/env python3
"""reward_spread.py -- how much of a reward's spread the tree's branching decides.

Reads scored trajectory files of the same prompts (one per seed; each prompt one tree per file)
and prints, per reward: the mean reward, the leaves' variance within one tree, the variance over
all files' leaves of a prompt, the share of the second that the first is (near 1: the SDE
branches decide the outcome as much as a fresh start does; near 0: the trunk decides it), and how
many trees have any spread among their leaves. Needs h5py and HDF5_PLUGIN_PATH for zstd.

    HDF5_PLUGIN_PATH=build/hdf5-plugins /usr/bin/python3 scripts/reward_spread.py s1.h5 s2.h5 ...
"""
import sys

import h5py
import numpy as np


def main(paths):
    files = [h5py.File(p, "r") for p in paths]
    prompts = int(files[0]["leaves/prompt"][:].max()) + 1
    print("reward\tmean\twithin_tree_var\tper_prompt_var\twithin_share\ttrees_with_spread")
    for name in files[0]["rewards"]:
        per_file = [(f["leaves/prompt"][:], f["rewards/" + name][:]) for f in files]
        within = total = 0.0
        means, spread = [], 0
        for i in range(prompts):
            trees = [r[p == i] for p, r in per_file]
            leaves = np.concatenate(trees)
            total += leaves.var()
            within += np.mean([t.var() for t in trees])
            means.append(leaves.mean())
            spread += sum(t.var() > 0 for t in trees)
        share = within / total if total > 0 else float("nan")
        print(f"{name}\t{np.mean(means):.3f}\t{within / prompts:.4f}\t{total / prompts:.4f}\t{share:.2f}\t"
              f"{spread} of {prompts * len(files)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
