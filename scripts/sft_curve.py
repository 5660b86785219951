#!/usr/bin/env python3
"""The base model's training curve: the flow-matching loss of `update --metrics` JSON lines
(one file per chunk of the recipe, in order) against the optimizer step, as an SVG, with a
running mean over 200 steps (single steps are noisy: sigma is drawn per sample).

    sft_curve.py out/base/sft-2000.jsonl ... out/base/sft-16000.jsonl --svg curve.svg
"""
import argparse
import json
import os


def main():
    a = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    a.add_argument("metrics", nargs="+")
    a.add_argument("--svg", required=True)
    a.add_argument("--window", type=int, default=200)
    o = a.parse_args()
    rows = {}
    for path in o.metrics:
        for line in open(path):
            if line.strip():
                r = json.loads(line)
                if "step" in r and "loss" in r:
                    rows[r["step"]] = r["loss"]
    steps = sorted(rows)
    losses = [rows[s] for s in steps]
    mean, acc = [], 0.0
    for i, v in enumerate(losses):
        acc += v
        if i >= o.window:
            acc -= losses[i - o.window]
        mean.append(acc / min(i + 1, o.window))
    w, h, left, bottom, top, right = 640, 360, 60, 40, 20, 20
    lo, hi = 0.0, max(0.3, min(1.2, max(mean[len(mean) // 50:] or mean)))
    xs = lambda s: left + (w - left - right) * (s - steps[0]) / max(steps[-1] - steps[0], 1)
    ys = lambda v: top + (h - top - bottom) * (1 - (min(v, hi) - lo) / (hi - lo))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        out.append(f'<line x1="{left}" x2="{w - right}" y1="{ys(v):.1f}" y2="{ys(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{ys(v) + 4:.1f}" text-anchor="end">{v:.3f}</text>')
    for k in range(5):
        s = steps[0] + (steps[-1] - steps[0]) * k / 4
        out.append(f'<text x="{xs(s):.1f}" y="{h - bottom + 16}" text-anchor="middle">{int(s)}</text>')
    out.append(f'<text x="{(left + w - right) / 2}" y="{h - 6}" text-anchor="middle">optimizer step (batch 32)</text>')
    out.append(f'<text x="14" y="{(top + h - bottom) / 2}" transform="rotate(-90 14 {(top + h - bottom) / 2})" '
               f'text-anchor="middle">flow-matching loss ({o.window}-step mean)</text>')
    pts = " ".join(f"{xs(s):.1f},{ys(v):.1f}" for s, v in list(zip(steps, mean))[::10])
    out.append(f'<polyline points="{pts}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    out.append("</svg>")
    tmp = o.svg + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, o.svg)
    print(f"loss curve: {o.svg} (steps {steps[0]}-{steps[-1]}, last mean {mean[-1]:.4f})")


if __name__ == "__main__":
    main()
