#!/usr/bin/env python3
"""tree_leaves_grid.py -- one row per prompt of a scored tree rollout: its leaves side by side,
framed green where a reward passes (> 0) and red where it does not, to see what the branches of
one tree change. Writes an 8-bit RGB PNG with the standard library's zlib (no imaging library).

    HDF5_PLUGIN_PATH=build/hdf5-plugins /usr/bin/python3 scripts/tree_leaves_grid.py \\
        SCORED.h5 OUT.png [--reward shapes] [--prompts 3] [--scale 3]
"""
import argparse
import os
import struct
import sys
import zlib

import h5py
import numpy as np


def write_png(rgb, path):
    height, width, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    with open(path + ".part", "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    os.replace(path + ".part", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scored")
    ap.add_argument("out")
    ap.add_argument("--reward", default="shapes", help="reward whose pass (> 0) colours the frame")
    ap.add_argument("--prompts", type=int, default=3, help="rows: the first N prompts")
    ap.add_argument("--scale", type=int, default=3, help="pixel replication")
    a = ap.parse_args()
    f = h5py.File(a.scored, "r")
    for need in ("leaves/image", "leaves/prompt", "rewards/" + a.reward):
        if need not in f:
            sys.exit(f"tree_leaves_grid.py: {a.scored}: no /{need}")
    images, prompt, reward = f["leaves/image"], f["leaves/prompt"][:], f["rewards/" + a.reward][:]
    texts = [t.decode() if isinstance(t, bytes) else t for t in f["prompts/text"][:]]
    rows = []
    for i in range(min(a.prompts, int(prompt.max()) + 1)):
        tiles = []
        for j in np.where(prompt == i)[0]:
            tile = np.kron(np.asarray(images[j], dtype=np.uint8), np.ones((a.scale, a.scale, 1), np.uint8))
            frame = np.empty((tile.shape[0] + 4, tile.shape[1] + 4, 3), np.uint8)
            frame[...] = (0, 200, 0) if reward[j] > 0 else (200, 0, 0)
            frame[2:-2, 2:-2] = tile
            tiles.append(frame)
        rows.append(np.concatenate(tiles, 1))
        print(f"row {i}: {texts[i]}: {a.reward} {reward[prompt == i].tolist()}")
    write_png(np.concatenate(rows, 0), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
