#!/usr/bin/env python3
"""loop_report.py -- the RL loop's progress table and reward curve, from the files the loop
rules of Makefile.examples leave in LOOP_DIR (standard library only):

  itK.rollout.json / itK.scored.json / itK.adv.json   --json summaries of tree-rollout, score, advantage
  itK.metrics.jsonl                                    update's metrics (last line: the update's summary)

  loop_report.py LOOP_DIR ITERS [--every N] [--svg FILE] [--eval REPORT.json]
                 [--curve curveK.json... [--curve-svg FILE]]

Prints one row per iteration (with --every N, every N-th and the last): the batch's mean strict
and partial reward (the shapes rewards of its leaves), the clip fraction and mean |rho - 1| of the
update, lambda, and the seconds of each stage; writes the reward curve as SVG; with --eval, the
held-out comparison of evaluate's report. With --curve, evaluate's reports of single checkpoints
named curveK.json (K = the iteration; loop-long's held-out curve): a table of held-out strict
(with its standard error), partial and the judge's count match, foreground and diversity against
K, and with --curve-svg the same as a plot.
"""
import re
import argparse
import json
import os
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def last_line(path):
    with open(path) as f:
        lines = [l for l in f if l.strip()]
    return json.loads(lines[-1])


W, H, LEFT, BOTTOM, TOP = 640, 360, 56, 40, 20  # the plots' frame (pixels); the legend is right of it


def svg_frame(right, xticks, ylabel=None):
    """The plot's start: background, y grid 0..1 with labels, x tick labels at (x, text), axis titles.
    Returns the SVG lines and ys, the y pixel of a value."""
    ys = lambda v: TOP + (H - TOP - BOTTOM) * (1 - v)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>']
    for v in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<line x1="{LEFT}" x2="{W - right}" y1="{ys(v):.1f}" y2="{ys(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{LEFT - 6}" y="{ys(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for x, text in xticks:
        out.append(f'<text x="{x:.1f}" y="{H - BOTTOM + 16}" text-anchor="middle">{text}</text>')
    out.append(f'<text x="{(LEFT + W - right) / 2}" y="{H - 6}" text-anchor="middle">iteration</text>')
    if ylabel:
        out.append(f'<text x="14" y="{(TOP + H - BOTTOM) / 2}" transform="rotate(-90 14 {(TOP + H - BOTTOM) / 2})" '
                   f'text-anchor="middle">{ylabel}</text>')
    return out, ys


def svg_line(out, right, index, points, colour, label):
    """A polyline of (x, y) pixels and its legend entry (the index-th) right of the frame."""
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
    y = TOP + 14 + 18 * index
    out.append(f'<line x1="{W - right + 10}" x2="{W - right + 30}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="2"/>')
    out.append(f'<text x="{W - right + 34}" y="{y}">{label}</text>')


def write_svg(out, path):
    out.append("</svg>")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)


def svg_curve(rows, path):
    right, n = 130, len(rows)
    xs = lambda i: LEFT + (W - LEFT - right) * (i / max(n - 1, 1))
    ticks = [(xs(i), rows[i]["iteration"]) for i in range(n) if n <= 12 or i % max(1, n // 10) == 0 or i == n - 1]
    out, ys = svg_frame(right, ticks, "mean reward of the batch")
    for index, (key, colour, label) in enumerate((("strict", "#1f77b4", "shapes (strict)"),
                                                  ("partial", "#ff7f0e", "shapes-partial"))):
        svg_line(out, right, index, [(xs(i), ys(r[key])) for i, r in enumerate(rows)], colour, label)
    write_svg(out, path)


def curve_points(paths):
    points = []
    for path in paths:
        m = re.fullmatch(r"curve(\d+)\.json", os.path.basename(path))
        if not m:
            sys.exit(f"loop_report.py: {path}: expected a file named curveK.json (K = the iteration)")
        try:
            r = load(path)["policy"]
            points.append({"iteration": int(m.group(1)), "strict": r["metrics"]["shapes"]["mean"],
                           "strict_se": r["metrics"]["shapes"]["std_error"],
                           "partial": r["metrics"]["shapes-partial"]["mean"],
                           "count_match": r["judge"]["count_match"]["mean"],
                           "foreground": r["judge"]["foreground"]["mean"],
                           "diversity": r["judge"]["diversity"]["mean"]})
        except (OSError, KeyError, ValueError) as e:
            sys.exit(f"loop_report.py: {path}: not an evaluate report with the shapes rewards and the judge ({e})")
    return sorted(points, key=lambda p: p["iteration"])


CURVE_LINES = (("strict", "#1f77b4", "held-out strict"), ("partial", "#ff7f0e", "held-out partial"),
               ("count_match", "#2ca02c", "judge: count match"), ("foreground", "#9467bd", "judge: foreground"),
               ("diversity", "#8c564b", "diversity"))


def svg_heldout_curve(points, path):
    """Held-out figures against the iteration (x to scale), 0..1 on y."""
    right, last = 150, max(p["iteration"] for p in points) or 1
    xs = lambda k: LEFT + (W - LEFT - right) * (k / last)
    out, ys = svg_frame(right, [(xs(p["iteration"]), p["iteration"]) for p in points])
    for index, (key, colour, label) in enumerate(CURVE_LINES):
        svg_line(out, right, index, [(xs(p["iteration"]), ys(p[key])) for p in points], colour, label)
        if key == "strict":  # +-1.96 standard errors of the evaluation
            for p in points:
                x, lo, hi = xs(p["iteration"]), ys(p["strict"] - 1.96 * p["strict_se"]), ys(p["strict"] + 1.96 * p["strict_se"])
                out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{lo:.1f}" y2="{hi:.1f}" stroke="{colour}"/>')
    write_svg(out, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("loop_dir")
    ap.add_argument("iters", type=int)
    ap.add_argument("--svg")
    ap.add_argument("--eval")
    ap.add_argument("--every", type=int, default=1, help="print every N-th iteration's row (and the last)")
    ap.add_argument("--curve", nargs="+", default=[], help="evaluate reports named curveK.json")
    ap.add_argument("--curve-svg")
    a = ap.parse_args()
    if a.every < 1:
        sys.exit("loop_report.py: --every: expected a positive number of iterations")
    rows = []
    for k in range(a.iters):
        p = lambda suffix: os.path.join(a.loop_dir, f"it{k}.{suffix}")
        try:
            s = last_line(p("metrics.jsonl"))
            r = s["rewards"]
            rows.append({"iteration": k, "strict": r["shapes"]["mean"], "partial": r["shapes-partial"]["mean"],
                         "clip": s["clip_fraction"], "dev": s["ratio_dev"], "lam": s["lambda"],
                         "t_roll": load(p("rollout.json"))["seconds"], "t_score": load(p("scored.json"))["seconds"],
                         "t_adv": load(p("adv.json"))["seconds"], "t_upd": s["seconds"]})
        except (OSError, KeyError, ValueError) as e:
            sys.exit(f"loop_report.py: iteration {k}: {e}")
    print(f"{'iter':>4} {'strict':>7} {'partial':>7} {'clip':>6} {'|rho-1|':>8} {'lambda':>7} "
          f"{'rollout':>8} {'score':>6} {'adv':>5} {'update':>7}")
    for r in rows:
        if r["iteration"] % a.every and r["iteration"] != a.iters - 1:
            continue
        print(f"{r['iteration']:>4} {r['strict']:>7.3f} {r['partial']:>7.3f} {r['clip']:>6.3f} {r['dev']:>8.1e} "
              f"{r['lam']:>7.4f} {r['t_roll']:>7.1f}s {r['t_score']:>5.1f}s {r['t_adv']:>4.1f}s {r['t_upd']:>6.1f}s")
    if a.svg:
        svg_curve(rows, a.svg)
        print(f"reward curve: {a.svg}")
    if a.eval:
        e = load(a.eval)
        for name, c in e["comparison"].items():
            print(f"held-out {name}: base {c['mean_policy']:.3f} -> final {c['mean_compare']:.3f}, "
                  f"difference {c['difference']:+.3f}, {100 * c['confidence']:.0f}% CI "
                  f"[{c['ci_low']:+.3f}, {c['ci_high']:+.3f}], p = {c['p_value']:.2g} "
                  f"({c['prompts']} prompts: {c['better']} better, {c['worse']} worse)")
        if "judge" in e["policy"]:  # the judge shares no decision with the rewards
            for label, j in (("renders", e["renders"]["judge"]), ("base", e["policy"]["judge"]),
                             ("final", e["compare"]["judge"])):
                print(f"held-out judge {label}: foreground {j['foreground']['mean']:.3f}, count match "
                      f"{j['count_match']['mean']:.3f}, diversity {j['diversity']['mean']:.3f}, "
                      f"duplicates {j['duplicate_rate']['mean']:.3f}")
    if a.curve:
        points = curve_points(a.curve)
        print(f"{'iter':>4} {'held-out strict':>15} {'partial':>7} {'count match':>11} {'foreground':>10} {'diversity':>9}")
        for p in points:
            print(f"{p['iteration']:>4} {p['strict']:>7.3f} ({p['strict_se']:.3f}) {p['partial']:>7.3f} "
                  f"{p['count_match']:>11.3f} {p['foreground']:>10.3f} {p['diversity']:>9.3f}")
        if a.curve_svg:
            svg_heldout_curve(points, a.curve_svg)
            print(f"held-out curve: {a.curve_svg}")


if __name__ == "__main__":
    main()
