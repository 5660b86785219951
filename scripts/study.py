#!/usr/bin/env python3
"""study.py -- the side-by-side study of Makefile.examples' `study` target (standard library only).

Runs the RL loop on the shapes world for each configuration under the same wall-clock budget,
with the same seed and the same prompt shards per iteration:

  tree          Dynamic-TreeRPO: tree rollout with dynamic noise, LayerTuning-RL
  window        MixGRPO: 16 trajectories, SDE in the sliding window, GRPO
  independent   Flow-GRPO: 16 trajectories, SDE at every step, GRPO
  tree-beta0    the tree with uniform noise (beta = 0)
  tree-eta0     the tree with fixed clipping (eta = 0)
  tree-lambda0  the tree without the SFT term (lambda = 0)

Each configuration iterates rollout -> score -> advantage -> update until its stage time (the
wall clock of the four tools, evaluation excluded) reaches --budget seconds, and evaluates its
checkpoint on the held-out prompts after iterations that cross each of --points equal fractions
of the budget (and at the start). Writes DIR/results.json, DIR/table.md and DIR/study.svg
(held-out strict accuracy against seconds and against NFEs), and prints the table.

  study.py --bin build/bin --base models/shapes-base.safetensors --train train.txt \
           --heldout heldout.txt --out out/study --budget 600
"""
import argparse
import json
import os
import subprocess
import sys
import time

CONFIGS = {
    "tree": ([], []),
    "window": (["--mode", "window", "--leaves", "16"], []),
    "independent": (["--mode", "independent", "--leaves", "16"], []),
    "tree-beta0": (["--noise-growth", "0"], []),
    "tree-eta0": ([], ["--eta", "0"]),
    "tree-lambda0": ([], ["--lambda", "0"]),
}


def run(cmd, capture=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"study.py: {' '.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    return r.stdout


def evaluate(a, policy, report):
    run([f"{a.bin}/evaluate", "--policy", policy, "--prompts", a.heldout, "--samples", str(a.eval_samples),
         "--steps", str(a.eval_steps), "--guidance", str(a.guidance), "--threads", str(a.threads),
         "--report", report, "--force", "-q"])
    with open(report) as f:
        m = json.load(f)["policy"]["metrics"]
    return m["shapes"]["mean"], m["shapes"]["std_error"]


def study_one(a, name, rollout_extra, update_extra, lines):
    d = os.path.join(a.out, name)
    os.makedirs(d, exist_ok=True)
    ckpt = os.path.join(d, "ckpt0.safetensors")
    run(["cp", a.base, ckpt])
    with open(a.train) as f:
        shards = max(1, sum(1 for _ in f) // a.prompts)
    seconds, nfe, k = 0.0, 0, 0
    acc, se = evaluate(a, ckpt, os.path.join(d, "eval0.json"))
    points = [{"iteration": 0, "seconds": 0.0, "nfe": 0, "strict": acc, "std_error": se}]
    next_point = 1
    while seconds < a.budget and k < a.max_iters:
        p = lambda s: os.path.join(d, f"it{k}.{s}")
        start = time.monotonic()
        out = run([f"{a.bin}/tree-rollout", "--policy", ckpt, "--prompts", a.train, "--shard", f"{k % shards}/{shards}",
                   "--iteration", str(k), "--steps", str(a.steps), "--guidance", str(a.guidance), "--seed", str(a.seed),
                   "--threads", str(a.threads), "-o", p("rollout.h5"), "--force", "-q", "--json"] + rollout_extra)
        nfe += json.loads(out)["nfe"]
        run([f"{a.bin}/score", "--reward", "shapes", "--reward", "shapes-partial:0.5", p("rollout.h5"),
             "-o", p("scored.h5"), "--force", "-q"])
        run([f"{a.bin}/advantage", p("scored.h5"), "-o", p("adv.h5"), "--force", "-q"])
        nxt = os.path.join(d, f"ckpt{k + 1}.safetensors")
        run([a.launch, str(a.ranks), f"{a.bin}/update", "--policy", ckpt, p("adv.h5"), "--lr", str(a.lr),
             "--threads", str(a.threads_per_rank), "--metrics", p("metrics.jsonl"), "-o", nxt, "--force", "-q"]
            + update_extra)
        seconds += time.monotonic() - start
        for f in ("rollout.h5", "scored.h5"):  # keep the advantaged file and metrics, not every copy
            os.remove(p(f))
        ckpt, k = nxt, k + 1
        if seconds >= a.budget * next_point / a.points or seconds >= a.budget:
            acc, se = evaluate(a, ckpt, os.path.join(d, f"eval{k}.json"))
            points.append({"iteration": k, "seconds": seconds, "nfe": nfe, "strict": acc, "std_error": se})
            lines.append(f"{name:>13} it {k:>3} {seconds:8.1f}s NFE {nfe:>8} held-out strict {acc:.3f} (s.e. {se:.3f})")
            print(lines[-1], flush=True)
            while next_point <= a.points and seconds >= a.budget * next_point / a.points:
                next_point += 1
    return points


def svg(results, path):
    w, h = 900, 380
    panels = [("seconds", "stage wall-clock seconds"), ("nfe", "model evaluations (NFE)")]
    colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"]
    ys_all = [p["strict"] for r in results.values() for p in r]
    lo, hi = min(ys_all + [0.0]), max(ys_all + [0.5])
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>']
    for i, (key, label) in enumerate(panels):
        x0, x1, y0, y1 = 60 + i * 360, 380 + i * 360, 30, h - 50
        xmax = max([p[key] for r in results.values() for p in r] + [1])
        X = lambda v: x0 + (x1 - x0) * v / xmax
        Y = lambda v: y1 - (y1 - y0) * (v - lo) / max(hi - lo, 1e-9)
        out.append(f'<rect x="{x0}" y="{y0}" width="{x1 - x0}" height="{y1 - y0}" fill="none" stroke="#999"/>')
        for t in range(5):
            v = lo + (hi - lo) * t / 4
            out.append(f'<text x="{x0 - 4}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
            xv = xmax * t / 4
            out.append(f'<text x="{X(xv):.1f}" y="{y1 + 16}" text-anchor="middle">{xv:.0f}</text>')
        out.append(f'<text x="{(x0 + x1) / 2}" y="{h - 12}" text-anchor="middle">{label}</text>')
        for c, (name, pts) in enumerate(results.items()):
            line = " ".join(f"{X(p[key]):.1f},{Y(p['strict']):.1f}" for p in pts)
            out.append(f'<polyline points="{line}" fill="none" stroke="{colours[c % 6]}" stroke-width="2"/>')
    out.append(f'<text x="60" y="18">held-out strict accuracy</text>')
    for c, name in enumerate(results):
        x = 240 + 110 * c
        out.append(f'<line x1="{x}" x2="{x + 16}" y1="14" y2="14" stroke="{colours[c % 6]}" stroke-width="2"/>')
        out.append(f'<text x="{x + 20}" y="18">{name}</text>')
    out.append("</svg>")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description="the side-by-side study of samplers and ablations")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--launch", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch-local.sh"))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--budget", type=float, default=600, help="stage seconds per configuration")
    ap.add_argument("--points", type=int, default=3, help="evaluations along the budget")
    ap.add_argument("--max-iters", type=int, default=1000)
    ap.add_argument("--prompts", type=int, default=16, help="training prompts per iteration")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threads-per-rank", type=int, default=1)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--eval-steps", type=int, default=20)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    results, lines = {}, []
    for name in a.configs.split(","):
        if name not in CONFIGS:
            sys.exit(f"study.py: unknown configuration '{name}' (known: {', '.join(CONFIGS)})")
        results[name] = study_one(a, name, *CONFIGS[name], lines)
    table = ["| configuration | iterations | stage seconds | NFE | held-out strict (s.e.) | seconds to reach the window's final accuracy |",
             "|---|---|---|---|---|---|"]
    target = results["window"][-1]["strict"] if "window" in results else None
    first = next(iter(results.values()))[0]
    table.append(f"| base (before training) | 0 | 0 | 0 | {first['strict']:.3f} ({first['std_error']:.3f}) | - |")
    for name, pts in results.items():
        last = pts[-1]
        reach = next((p["seconds"] for p in pts[1:] if target is not None and p["strict"] >= target), None)
        table.append(f"| {name} | {last['iteration']} | {last['seconds']:.0f} | {last['nfe']} | "
                     f"{last['strict']:.3f} ({last['std_error']:.3f}) | {'-' if reach is None else f'{reach:.0f}'} |")
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump({"budget_seconds": a.budget, "configs": results}, f, indent=1)
    with open(os.path.join(a.out, "table.md"), "w") as f:
        f.write("\n".join(table) + "\n")
    svg(results, os.path.join(a.out, "study.svg"))
    print("\n".join(table))
    print(f"plot: {os.path.join(a.out, 'study.svg')}")


if __name__ == "__main__":
    main()
