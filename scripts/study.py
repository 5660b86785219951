#!/usr/bin/env python3
"""study.py -- the side-by-side study of Makefile.examples' `study` target (standard library only).

Runs the RL loop on the shapes world for each configuration and each seed under the same budget
of stage seconds, with the same prompt shards per iteration:

  tree          Dynamic-TreeRPO: tree rollout with dynamic noise, LayerTuning-RL
  window        MixGRPO: 16 trajectories, SDE in the sliding window, GRPO
  independent   Flow-GRPO: 16 trajectories, SDE at every step, GRPO
  tree-beta0    the tree with uniform noise (beta = 0)
  tree-eta0     the tree with fixed clipping (eta = 0)
  tree-lambda0  the tree without the SFT term (lambda = 0)
  tree-nft      the tree's leaves trained by DiffusionNFT's objective (update --objective nft)
  window-nft    MixGRPO's sampler (16 trajectories, SDE in the sliding window), the same objective
  independent-nft  Flow-GRPO's sampler (16 independent SDE trajectories), the same objective
  tree-nft-beta0   tree-nft with uniform noise (beta = 0): the dynamic noise's share of its gain

A run (one configuration, one seed) iterates rollout -> score -> advantage -> update until its
stage seconds (the wall clock of the four tools; evaluation excluded) reach --budget, or it has
done --max-iters iterations. Its checkpoints are evaluated on the held-out prompts at iteration 0
(the base model, evaluated once for all runs), after each iteration that crosses a multiple of
--eval-every seconds, and after the last iteration of the budget.

Layout of DIR (--out):

  settings.json            what must not change between invocations (inputs' sha256, sampling,
                           learning rate, common tool arguments, threads, evaluation, spacing of
                           the evaluation points); a later invocation with other values is refused
  eval-base.json           evaluate's report of the base model (the iteration-0 point of every run)
  CONFIG/seedS/state.json  the run's progress, rewritten atomically after every iteration and
                           every evaluation: iteration k, stage seconds and NFE so far, the current
                           checkpoint, the evaluation points, and one log entry per iteration
  CONFIG/seedS/ckptK.safetensors   checkpoints at evaluation points and the latest one (others
                           are deleted once the next iteration is recorded)
  CONFIG/seedS/itK.*.json, itK.metrics.jsonl   each stage's --json summary and the update's
                           metrics (kept); the iteration's .h5 files are deleted once it is
                           recorded (--keep-adv keeps the advantaged file)
  CONFIG/seedS/evalK.json  evaluate's report of checkpoint K
  results.json, table.md, study.svg, judge.svg   the outputs, rebuilt from the states each time

Resuming: rerunning the same command continues every run from the checkpoint its state.json
records. An iteration interrupted mid-way is redone from its start (the tools overwrite with
--force; its partial seconds are not counted). A run whose stage seconds reached the budget is
not rerun; a larger --budget on a later invocation continues it where it stopped. The evaluation
points are multiples of a spacing fixed at the first invocation (--eval-every, default
budget/--points then), so raising the budget does not move them. An evaluation report that
exists for the current checkpoint is reused (a crash between the report and the state update).
--configs and --seeds may differ between invocations (add seeds later, say); the outputs then
cover the runs the invocation names.

  study.py --bin build/bin --base models/shapes-base.safetensors --train train.txt \\
           --heldout heldout.txt --out out/study --budget 600 --seeds 1,2,3
"""
import argparse
import fcntl
import hashlib
import json
import math
import os
import shlex
import subprocess
import sys
import time

# name: (tree-rollout arguments, update arguments) of the configuration; they override the common
# --rollout-args / --update-args.
CONFIGS = {
    "tree": ([], []),
    "window": (["--mode", "window", "--leaves", "16"], []),
    "independent": (["--mode", "independent", "--leaves", "16"], []),
    "tree-beta0": (["--noise-growth", "0"], []),
    "tree-eta0": ([], ["--eta", "0"]),
    "tree-lambda0": ([], ["--lambda", "0"]),
    # NFT's own learning rate (issue 17's sweep): the study's --lr is the edge objectives'.
    "tree-nft": ([], ["--objective", "nft", "--lr", "1e-4"]),
    "window-nft": (["--mode", "window", "--leaves", "16"], ["--objective", "nft", "--lr", "1e-4"]),
    "independent-nft": (["--mode", "independent", "--leaves", "16"],
                        ["--objective", "nft", "--lr", "1e-4"]),
    # NFT has no ratio to clip and no SFT term: of the tree's ablations only the noise applies.
    "tree-nft-beta0": (["--noise-growth", "0"], ["--objective", "nft", "--lr", "1e-4"]),
}
# Options the driver sets itself for every run: extra arguments may not change them, or the runs
# would stop being comparable (or resumable).
RESERVED = {"--policy", "--prompts", "--shard", "--iteration", "--seed", "--output", "--force",
            "--quiet", "--json", "--metrics", "--config"}
SHORT = {"-o": "--output", "-f": "--force", "-q": "--quiet", "-t": "--threads", "-v": "--verbose"}
LEVELS = (0.5, 0.75, 0.9)  # time-to-accuracy levels, fractions of the best final gain over the base


def die(msg):
    sys.exit(f"study.py: {msg}")


def write_atomic(path, text):
    """Readers (and a resumed study) never see half a file: write a sibling, then rename."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def write_json(path, obj):
    write_atomic(path, json.dumps(obj, indent=1) + "\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


# --- Tool arguments -------------------------------------------------------------------------
# CLI11 refuses an option given twice ("--lambda: At Most 1 required but received 2"), so the
# lists are merged here: a later list replaces the options it sets in an earlier one.

def is_number(tok):
    try:
        float(tok)
        return True
    except ValueError:
        return False


def option_name(tok):
    """The long name of an option token (--name, --name=value, -t), None for a value."""
    if tok.startswith("--"):
        return tok.split("=", 1)[0]
    if tok.startswith("-") and len(tok) > 1 and not is_number(tok):
        return SHORT.get(tok[:2], tok[:2])
    return None


def option_groups(args):
    """Splits ['--a', '1', '--flag', '--b', '2', '3'] into [('--a', [...]), ...]: an option and
    the values up to the next option (a flag has none, --branching 2 2 has two)."""
    groups = []
    for tok in args:
        name = option_name(tok)
        if name is not None or not groups:
            groups.append((name, [tok]))
        else:
            groups[-1][1].append(tok)
    return groups


def override(base, extra):
    """base without the options extra sets (each with its values), then extra."""
    replaced = {name for name, _ in option_groups(extra) if name}
    kept = [tok for name, toks in option_groups(base) if name not in replaced for tok in toks]
    return kept + list(extra)


def check_extra(args, what):
    for name, toks in option_groups(args):
        if name is None:
            die(f"{what}: '{toks[0]}' is not an option")
        if name in RESERVED:
            die(f"{what}: {name} is set by the study itself")


# The tools refuse options that shape another mode rather than ignore them (tree_rollout.cpp
# validate, update.cpp check_rl_options), so a common argument is passed only to the
# configurations it applies to: --rollout-args '--branching 4' still runs the window baseline.
TREE_ONLY = {"--branching"}
WINDOW_ONLY = {"--depth", "--window-start", "--window-stride", "--window-interval", "--window-schedule",
               "--window-overflow"}
LAYERTUNING_ONLY = {"--lambda", "--lambda-schedule", "--lambda-iterations", "--sft-target", "--sft-data",
                    "--sft-batch", "--layer-weights", "--no-advantage-weighting", "--sft-velocity"}
EDGE_ONLY = {"--clip-low", "--clip-high", "--eta", "--replay-tolerance", "--train-uncond"}
NFT_ONLY = {"--nft-beta", "--nft-scale", "--nft-timesteps"}


def option_value(args, name, default):
    for opt, toks in option_groups(args):
        if opt == name:
            return toks[0].split("=", 1)[1] if "=" in toks[0] else toks[1]
    return default


def drop(args, names):
    """args without the options in names; and the options dropped."""
    groups = option_groups(args)
    return ([t for n, toks in groups if n not in names for t in toks],
            sorted({n for n, _ in groups if n in names}))


def rollout_args(a, config):
    """tree-rollout's arguments: the study's own, replaced by the common ones, replaced by the
    configuration's; and the common options dropped as not applying to its mode."""
    own = ["--steps", str(a.steps), "--guidance", str(a.guidance), "--threads", str(a.threads)]
    mode = option_value(CONFIGS[config][0], "--mode", "tree")
    refused = set() if mode == "tree" else TREE_ONLY | (WINDOW_ONLY if mode == "independent" else set())
    common, dropped = drop(a.rollout_extra, refused)
    return override(override(own, common), CONFIGS[config][0]), dropped


def update_args(a, config):
    """update's arguments, merged likewise; the objective is update's default for the rollout's
    mode (layertuning for trees, grpo for the baselines) unless the arguments name one."""
    own = ["--lr", str(a.lr), "--threads", str(a.threads_per_rank)]
    mode = option_value(CONFIGS[config][0], "--mode", "tree")
    merged = override(a.update_extra, CONFIGS[config][1])
    objective = option_value(merged, "--objective", "layertuning" if mode == "tree" else "grpo")
    refused = {"grpo": LAYERTUNING_ONLY | NFT_ONLY, "nft": LAYERTUNING_ONLY | EDGE_ONLY}.get(objective, NFT_ONLY)
    common, dropped = drop(a.update_extra, refused)
    return override(override(own, common), CONFIGS[config][1]), dropped


def run(cmd, stdout_path=None):
    """Runs a tool; its stdout (a --json summary) goes to stdout_path, and a failure stops the
    study with the tool's message (the state still names the last complete iteration)."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        die(f"{shlex.join(cmd)}: exit {r.returncode}: {r.stderr.strip()}")
    if stdout_path:
        write_atomic(stdout_path, r.stdout)
    return r.stdout


# --- Settings that must hold across invocations ---------------------------------------------

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fixed_settings(a):
    return {
        "base_sha256": sha256(a.base), "train_sha256": sha256(a.train), "heldout_sha256": sha256(a.heldout),
        "prompts": a.prompts, "steps": a.steps, "guidance": a.guidance, "lr": a.lr,
        "rollout_args": a.rollout_extra, "update_args": a.update_extra,
        # Stage seconds are the budget: runs with other thread counts are not comparable.
        "ranks": a.ranks, "threads": a.threads, "threads_per_rank": a.threads_per_rank,
        "eval_samples": a.eval_samples, "eval_steps": a.eval_steps,
    }


def load_settings(a):
    """Returns the study's settings: those of the first invocation, which this one must match."""
    path = os.path.join(a.out, "settings.json")
    now = fixed_settings(a)
    if not os.path.exists(path):
        now["eval_every"] = a.eval_every if a.eval_every else a.budget / a.points
        now["paths"] = {"base": os.path.abspath(a.base), "train": os.path.abspath(a.train),
                        "heldout": os.path.abspath(a.heldout)}
        write_json(path, now)
        return now
    old = read_json(path)
    diff = [f"{k}: {old.get(k)!r} then, {v!r} now" for k, v in now.items() if old.get(k) != v]
    if a.eval_every and not math.isclose(a.eval_every, old["eval_every"]):
        diff.append(f"eval_every: {old['eval_every']!r} then, {a.eval_every!r} now")
    if diff:
        die(f"{a.out} was started with other settings ({'; '.join(diff)}); use another --out, or "
            f"edit {path} if the change is intended")
    return old


# --- Evaluation -----------------------------------------------------------------------------

def figures(report):
    """The figures of an evaluation point, from evaluate's single-policy --report."""
    p = read_json(report)["policy"]
    m, j = p["metrics"], p["judge"]
    return {"strict": m["shapes"]["mean"], "std_error": m["shapes"]["std_error"],
            "partial": m["shapes-partial"]["mean"], "count_match": j["count_match"]["mean"],
            "foreground": j["foreground"]["mean"], "diversity": j["diversity"]["mean"]}


def evaluate(a, policy, report):
    """Evaluates a checkpoint on the held-out prompts (evaluate's fixed seeds: every point of every
    run sees the same noise); an existing report is reused."""
    if not os.path.exists(report):
        run([f"{a.bin}/evaluate", "--policy", policy, "--prompts", a.heldout, "--samples", str(a.eval_samples),
             "--steps", str(a.eval_steps), "--guidance", str(a.guidance), "--threads", str(a.threads),
             "--report", report, "--force", "-q"])
    return figures(report)


# --- One run: (configuration, seed) -----------------------------------------------------------

class Run:
    def __init__(self, a, settings, config, seed, base_point):
        self.a, self.config, self.seed = a, config, seed
        self.every = settings["eval_every"]
        self.dir = os.path.join(a.out, config, f"seed{seed}")
        self.state_path = os.path.join(self.dir, "state.json")
        self.label = f"{config} seed {seed}"
        if os.path.exists(self.state_path):
            self.state = read_json(self.state_path)
        else:
            os.makedirs(self.dir, exist_ok=True)
            # Checkpoint 0 is the base model itself (not copied): it is evaluated once, for all runs.
            self.state = {"config": config, "seed": seed, "iteration": 0, "seconds": 0.0, "nfe": 0,
                          "checkpoint": os.path.abspath(a.base),
                          "points": [dict(iteration=0, seconds=0.0, nfe=0, report="../../eval-base.json",
                                          **base_point)],
                          "log": []}
            self.save()

    def path(self, name):
        return os.path.join(self.dir, name)

    def save(self):
        write_json(self.state_path, self.state)

    def finished(self):
        s = self.state
        return s["seconds"] >= self.a.budget or s["iteration"] >= self.a.max_iters

    def crosses(self, k):
        """Whether iteration k (the one that wrote checkpoint k) crossed a multiple of the spacing:
        multiples of a fixed spacing do not move when the budget changes."""
        before = self.state["log"][k - 2]["seconds"] if k >= 2 else 0.0
        after = self.state["log"][k - 1]["seconds"]
        return math.floor(after / self.every) > math.floor(before / self.every)

    def wants_eval(self, k):
        return k == 0 or self.crosses(k) or (k == self.state["iteration"] and self.finished())

    def evaluated(self, k):
        return any(p["iteration"] == k for p in self.state["points"])

    def resolve_checkpoint(self):
        # Iteration 0 starts from --base wherever it is now (settings.json vouches for its content).
        ckpt = self.a.base if self.state["iteration"] == 0 else os.path.join(self.dir, self.state["checkpoint"])
        if not os.path.exists(ckpt):
            die(f"{self.label}: {self.state_path} records checkpoint {ckpt}, which is missing; "
                f"remove {self.dir} to restart this run from the base model")
        return ckpt

    def status(self):
        s = self.state
        where = "done" if self.finished() else ("starting" if s["iteration"] == 0 else "resuming")
        return (f"{self.label}: {where} at iteration {s['iteration']} "
                f"({s['seconds']:.1f} of {self.a.budget:g} stage seconds, NFE {s['nfe']})")

    def advance(self):
        """Runs iterations until the budget is spent, evaluating along the way."""
        print(self.status(), flush=True)
        dropped = rollout_args(self.a, self.config)[1] + update_args(self.a, self.config)[1]
        if dropped and not self.finished():
            print(f"  (common {' '.join(dropped)} not passed: they do not apply to {self.config})", flush=True)
        self.catch_up_eval()
        while not self.finished():
            self.iterate()
            self.catch_up_eval()

    def catch_up_eval(self):
        """Evaluates the latest checkpoint if it is an evaluation point without one (also after a
        crash between an iteration and its evaluation)."""
        k = self.state["iteration"]
        if k == 0 or self.evaluated(k) or not self.wants_eval(k):
            return
        report = f"eval{k}.json"
        point = evaluate(self.a, self.resolve_checkpoint(), self.path(report))
        s = self.state
        s["points"].append(dict(iteration=k, seconds=s["seconds"], nfe=s["nfe"], report=report, **point))
        self.save()
        print(f"{self.config:>13} seed {self.seed} it {k:>3} {s['seconds']:8.1f}s NFE {s['nfe']:>8} "
              f"held-out strict {point['strict']:.3f} (s.e. {point['std_error']:.3f}) "
              f"diversity {point['diversity']:.3f}", flush=True)

    def stages(self, k, ckpt, nxt):
        """The four stages of iteration k: (name, command, file that keeps its --json summary)."""
        a, p = self.a, lambda suffix: self.path(f"it{k}.{suffix}")
        with open(a.train) as f:
            shards = max(1, sum(1 for _ in f) // a.prompts)
        # Shard k mod n for every run: each configuration and seed trains on the same prompts at
        # iteration k; the seed changes the noise only.
        rollout = ([f"{a.bin}/tree-rollout", "--policy", ckpt, "--prompts", a.train, "--shard", f"{k % shards}/{shards}",
                    "--iteration", str(k), "--seed", str(self.seed)] + rollout_args(a, self.config)[0])
        update = ([a.launch, str(a.ranks), f"{a.bin}/update", "--policy", ckpt, p("adv.h5")]
                  + update_args(a, self.config)[0]
                  + ["--metrics", p("metrics.jsonl"), "-o", self.path(nxt), "--force", "-q"])
        return [
            ("rollout", rollout + ["-o", p("rollout.h5"), "--force", "-q", "--json"], p("rollout.json")),
            ("score", [f"{a.bin}/score", "--reward", "shapes", "--reward", "shapes-partial:0.5", p("rollout.h5"),
                       "-o", p("scored.h5"), "--force", "-q", "--json"], p("scored.json")),
            ("advantage", [f"{a.bin}/advantage", p("scored.h5"), "-o", p("adv.h5"), "--force", "-q", "--json"],
             p("adv.json")),
            ("update", update, None),
        ]

    def iterate(self):
        """One iteration from the recorded checkpoint, recorded in the state once complete."""
        s, k = self.state, self.state["iteration"]
        ckpt, nxt = self.resolve_checkpoint(), f"ckpt{k + 1}.safetensors"
        # A report left from an earlier attempt at this iteration would describe another checkpoint.
        if os.path.exists(self.path(f"eval{k + 1}.json")):
            os.remove(self.path(f"eval{k + 1}.json"))
        wall = {}
        for name, cmd, summary in self.stages(k, ckpt, nxt):
            start = time.monotonic()
            run(cmd, summary)
            wall[name] = time.monotonic() - start
        s["iteration"], s["checkpoint"] = k + 1, nxt
        s["seconds"] += sum(wall.values())
        s["nfe"] += read_json(self.path(f"it{k}.rollout.json"))["nfe"]
        s["log"].append({"iteration": k, "seconds": s["seconds"], "nfe": s["nfe"],
                         "stage_seconds": {n: round(v, 3) for n, v in wall.items()}})
        self.save()
        self.prune(k)

    def prune(self, k):
        """Deletes what the recorded iteration k no longer needs: its sample files (they are large
        and the summaries keep their figures) and checkpoint k unless it is an evaluation point."""
        for suffix in ("rollout.h5", "scored.h5") + (() if self.a.keep_adv else ("adv.h5",)):
            if os.path.exists(self.path(f"it{k}.{suffix}")):
                os.remove(self.path(f"it{k}.{suffix}"))
        old = self.path(f"ckpt{k}.safetensors")
        if k > 0 and not self.evaluated(k) and os.path.exists(old):
            os.remove(old)


# --- Summaries ------------------------------------------------------------------------------

def mean(xs):
    return sum(xs) / len(xs)


def per_seed(values, fmt):
    """'mean (seed 1 / seed 2)' with several seeds, the value alone with one; None shows as '-'.
    The mean is '-' unless every seed has a value."""
    show = lambda v: "-" if v is None else fmt.format(v)
    if len(values) == 1:
        return show(values[0])
    m = None if any(v is None for v in values) else mean(values)
    return f"{show(m)} ({' / '.join(show(v) for v in values)})"


def first_reach(points, level):
    """The first evaluation point at or above the level, or None."""
    return next((p for p in points if p["strict"] >= level), None)


def summarize(runs):
    """Per configuration: the final points of its seeds, in seed order."""
    return {c: [seed_runs[s]["points"][-1] for s in sorted(seed_runs)] for c, seed_runs in runs.items()}


def markdown(head, rows):
    return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in rows]


JUDGED = ("partial", "count_match", "foreground", "diversity")


def config_table(base, finals):
    head = ["configuration", "iterations", "stage seconds", "NFE", "held-out strict", "eval s.e.", "partial",
            "count match", "foreground", "diversity", "diversity / base"]
    rows = [["base (before training)", "0", "0", "0", f"{base['strict']:.3f}", f"{base['std_error']:.3f}"]
            + [f"{base[k]:.3f}" for k in JUDGED] + ["100 %"]]
    for c, pts in finals.items():
        col = lambda key, fmt="{:.3f}": per_seed([p[key] for p in pts], fmt)
        # The evaluation noise of the seed mean (prompts x samples); the seeds' spread is in the columns.
        se = math.sqrt(sum(p["std_error"] ** 2 for p in pts)) / len(pts)
        div = mean([p["diversity"] for p in pts])
        rows.append([c, col("iteration", "{:g}"), col("seconds", "{:.0f}"), col("nfe", "{:.0f}"), col("strict"),
                     f"{se:.3f}"] + [col(k) for k in JUDGED]
                    + ["-" if base["diversity"] <= 0 else f"{100 * div / base['diversity']:.0f} %"])
    return markdown(head, rows)


def reach_table(base, runs, finals):
    """Time to accuracy, per seed (the seeds' evaluation points fall on the same second marks only
    approximately, so no curve is averaged before the crossing is found)."""
    best = max(finals, key=lambda c: mean([p["strict"] for p in finals[c]]))
    top = mean([p["strict"] for p in finals[best]])
    if top <= base["strict"]:
        return [f"Time to accuracy: no configuration ends above the base model's {base['strict']:.3f} held-out "
                f"strict accuracy ({best} is best with {top:.3f})."]
    # Fractions of the gain, not of the accuracy: with a base at 0.30 and a best at 0.39, half of
    # 0.39 is below the base and every run would "reach" it at 0 s.
    levels = [base["strict"] + f * (top - base["strict"]) for f in LEVELS]
    lines = [f"Time to accuracy: levels are fractions of the best configuration's gain over the base model, "
             f"base {base['strict']:.3f} + f x ({top:.3f} ({best}) - {base['strict']:.3f}). Stage seconds and NFE "
             f"at each seed's first evaluation point at or above the level (mean over seeds when every seed "
             f"reached it; '-' not reached).", ""]
    head = ["configuration"] + [f"{100 * f:.0f} % of the gain ({lv:.3f}): {what}" for f, lv in zip(LEVELS, levels)
                                 for what in ("seconds", "NFE")]
    rows = []
    for c, seed_runs in runs.items():
        rows.append([c])
        for lv in levels:
            hits = [first_reach(seed_runs[s]["points"], lv) for s in sorted(seed_runs)]
            rows[-1] += [per_seed([h and h["seconds"] for h in hits], "{:.0f}"),
                         per_seed([h and h["nfe"] for h in hits], "{:.0f}")]
    return lines + markdown(head, rows)


def claim_line(base, runs, finals, tree="tree", window="window"):
    """The paper's claim: the tree reaches the window sampler's accuracy in about half its time
    (asked of each objective's pair of samplers)."""
    what = f"Claim ({tree} reaches {window}'s accuracy in about half the time)"
    if tree not in runs or window not in runs:
        return f"{what}: needs both {tree} and {window}."
    target = mean([p["strict"] for p in finals[window]])
    window_s = mean([p["seconds"] for p in finals[window]])
    hits = [first_reach(runs[tree][s]["points"], target) for s in sorted(runs[tree])]
    secs = [h and h["seconds"] for h in hits]
    head = f"{what}: {window}'s final mean held-out strict is {target:.3f} after {window_s:.0f} stage seconds; "
    if target <= base["strict"]:
        return head + f"the base model already has {base['strict']:.3f}, so the claim is not tested at this budget."
    if all(x is not None for x in secs):
        return head + (f"{tree} first reaches it at {per_seed(secs, '{:.0f}')} s, "
                       f"{mean(secs) / window_s:.2f} of {window}'s time.")
    reached = sum(x is not None for x in secs)
    tree_s = mean([p["seconds"] for p in finals[tree]])
    return head + (f"{tree} does not reach it within its {tree_s:.0f} s" if reached == 0 else
                   f"{tree} reaches it in {reached} of {len(secs)} seeds only ({per_seed(secs, '{:.0f}')} s)") + "."


# The claim's pairs: the method's own objective, and the NFT objective (the one that learns here).
CLAIM_PAIRS = (("tree", "window"), ("tree-nft", "window-nft"))


def tables(a, settings, base, runs):
    finals = summarize(runs)
    seeds = sorted({s for r in runs.values() for s in r})
    title = (f"Study: {len(runs)} configuration(s) x {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), "
             f"budget {a.budget:g} stage seconds per run, evaluations every {settings['eval_every']:g} s "
             f"on the held-out prompts ({settings['eval_samples']} samples, {settings['eval_steps']} steps). "
             f"Final figures; several seeds show as mean (seed / seed ...).")
    return ([title, ""] + config_table(base, finals) + [""] + reach_table(base, runs, finals)
            + [""] + [claim_line(base, runs, finals, t, w) for t, w in CLAIM_PAIRS
                      if t in runs or w in runs or (t, w) == CLAIM_PAIRS[0]])


# --- Plots ----------------------------------------------------------------------------------

COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]  # one per configuration


def interpolate(points, x_key, y_key, x):
    for p, q in zip(points, points[1:]):
        if p[x_key] <= x <= q[x_key]:
            t = 0.0 if q[x_key] == p[x_key] else (x - p[x_key]) / (q[x_key] - p[x_key])
            return p[y_key] + t * (q[y_key] - p[y_key])
    return points[-1][y_key]


def mean_curve(curves, x_key, y_key):
    """The seeds' mean: each seed's curve linearly interpolated at every seed's x, up to where the
    shortest one ends (the seeds' points are not at the same x)."""
    end = min(c[-1][x_key] for c in curves)
    xs = sorted({p[x_key] for c in curves for p in c if p[x_key] <= end})
    return [(x, mean([interpolate(c, x_key, y_key, x) for c in curves])) for x in xs]


def svg_panel(out, x0, runs, x_key, x_label, y_key):
    """One 340 x 300 panel at x0: per configuration each seed thin, the seeds' mean thick."""
    pw, ph, y0 = 340, 300, 70
    curves = {c: [r[s]["points"] for s in sorted(r)] for c, r in runs.items()}
    pts = [p for cs in curves.values() for c in cs for p in c]
    xmax = max([p[x_key] for p in pts] + [1])
    lo, hi = min([p[y_key] for p in pts] + [0.0]), max([p[y_key] for p in pts] + [1e-3]) * 1.05
    X = lambda v: x0 + pw * v / xmax
    Y = lambda v: y0 + ph - ph * (v - lo) / max(hi - lo, 1e-9)
    line = lambda xy: " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in xy)
    out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for t in range(5):
        v, xv = lo + (hi - lo) * t / 4, xmax * t / 4
        out.append(f'<text x="{x0 - 4}" y="{Y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        out.append(f'<text x="{X(xv):.1f}" y="{y0 + ph + 16}" text-anchor="middle">{xv:.0f}</text>')
    out.append(f'<text x="{x0 + pw / 2}" y="{y0 + ph + 34}" text-anchor="middle">'
               f'{y_key.replace("_", " ")} against {x_label}</text>')
    for n, cs in enumerate(curves.values()):
        colour = COLOURS[n % len(COLOURS)]
        if len(cs) > 1:
            for c in cs:
                out.append(f'<polyline points="{line([(p[x_key], p[y_key]) for p in c])}" fill="none" '
                           f'stroke="{colour}" stroke-width="1" stroke-opacity="0.5"/>')
        out.append(f'<polyline points="{line(mean_curve(cs, x_key, y_key))}" fill="none" stroke="{colour}" '
                   f'stroke-width="3"/>')


def svg(path, title, runs, panels):
    """One panel per (x key, x label, y key) side by side, a legend of the configurations above."""
    w, h = 80 + 380 * len(panels), 410
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">',
           f'<rect width="{w}" height="{h}" fill="white"/>', f'<text x="60" y="18">{title}</text>']
    for i, panel in enumerate(panels):
        svg_panel(out, 60 + 380 * i, runs, *panel)
    per_row = max(1, (w - 60) // 130)  # the legend wraps rather than run off the picture
    for n, c in enumerate(runs):
        x, y, colour = 60 + 130 * (n % per_row), 34 + 14 * (n // per_row), COLOURS[n % len(COLOURS)]
        out.append(f'<line x1="{x}" x2="{x + 16}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{x + 20}" y="{y + 4}">{c}</text>')
    write_atomic(path, "\n".join(out + ["</svg>"]) + "\n")


# --- Driver ---------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description="the side-by-side study of samplers and ablations (resumable)")
    ap.add_argument("--bin", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--heldout", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--launch", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "launch-local.sh"))
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--seeds", default="1", help="comma-separated rollout seeds; one run per configuration and seed")
    ap.add_argument("--budget", type=float, default=600, help="stage seconds per run (raise it to extend a study)")
    ap.add_argument("--eval-every", type=float, help="stage seconds between evaluations (default: budget/points, "
                    "fixed at the first invocation)")
    ap.add_argument("--points", type=int, default=3, help="evaluations along the first budget when --eval-every is absent")
    ap.add_argument("--max-iters", type=int, default=1000)
    ap.add_argument("--prompts", type=int, default=16, help="training prompts per iteration")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--guidance", type=float, default=3)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--rollout-args", default="", help="extra tree-rollout arguments of every configuration "
                    "(a configuration's own options replace them); write --rollout-args='...'")
    ap.add_argument("--update-args", default="", help="extra update arguments of every configuration, likewise")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--threads-per-rank", type=int, default=1)
    ap.add_argument("--eval-samples", type=int, default=4)
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--keep-adv", action="store_true", help="keep each iteration's advantaged file (about 9 MB "
                    "at 16 prompts)")
    ap.add_argument("--report-only", action="store_true", help="run nothing: rebuild the outputs from the states")
    a = ap.parse_args()
    a.configs = [c for c in a.configs.split(",") if c]
    for c in a.configs:
        if c not in CONFIGS:
            die(f"unknown configuration '{c}' (known: {', '.join(CONFIGS)})")
    try:
        a.seeds = [int(s) for s in a.seeds.split(",") if s]
    except ValueError:
        die(f"--seeds: expected comma-separated integers, got '{a.seeds}'")
    if not a.seeds or len(set(a.seeds)) != len(a.seeds):
        die("--seeds: give distinct seeds")
    if a.eval_every is not None and a.eval_every <= 0 or a.points < 1:
        die("--eval-every and --points must be positive")
    a.rollout_extra, a.update_extra = shlex.split(a.rollout_args), shlex.split(a.update_args)
    check_extra(a.rollout_extra, "--rollout-args")
    check_extra(a.update_extra, "--update-args")
    return a


def lock(out):
    """Two drivers on one study would redo each other's iterations: refuse the second."""
    f = open(os.path.join(out, "study.lock"), "w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        die(f"another study.py is running on {out}")
    return f


def write_outputs(a, settings, base, runs):
    lines = tables(a, settings, base, runs)
    results = {"settings": dict(settings, budget=a.budget, max_iters=a.max_iters, configs=a.configs, seeds=a.seeds),
               "base": base,
               "runs": {c: {str(s): r[s] for s in sorted(r)} for c, r in runs.items()}}
    write_json(os.path.join(a.out, "results.json"), results)
    write_atomic(os.path.join(a.out, "table.md"), "\n".join(lines) + "\n")
    svg(os.path.join(a.out, "study.svg"), "held-out strict accuracy (thick: mean over seeds; thin: each seed)", runs,
        [("seconds", "stage seconds", "strict"), ("nfe", "model evaluations (NFE)", "strict")])
    svg(os.path.join(a.out, "judge.svg"), "judge figures (thick: mean over seeds; thin: each seed)", runs,
        [("seconds", "stage seconds", "diversity"), ("seconds", "stage seconds", "count_match"),
         ("seconds", "stage seconds", "foreground")])
    print("\n".join(lines))
    print(f"plots: {os.path.join(a.out, 'study.svg')} {os.path.join(a.out, 'judge.svg')}")


def main():
    a = parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.report_only:
        if not os.path.exists(os.path.join(a.out, "settings.json")):
            die(f"{a.out} holds no study")
        settings = read_json(os.path.join(a.out, "settings.json"))
        base = figures(os.path.join(a.out, "eval-base.json"))
    else:
        held = lock(a.out)  # noqa: F841 (held until exit)
        settings = load_settings(a)
        base = evaluate(a, a.base, os.path.join(a.out, "eval-base.json"))
        # Seed by seed: an interrupted study has every configuration at the first seeds, a comparison.
        try:
            for seed in a.seeds:
                for c in a.configs:
                    Run(a, settings, c, seed, base).advance()
        except KeyboardInterrupt:
            die("interrupted; rerun the same command to resume")
    runs = {}
    for c in a.configs:
        for seed in a.seeds:
            state = os.path.join(a.out, c, f"seed{seed}", "state.json")
            if os.path.exists(state):
                runs.setdefault(c, {})[seed] = read_json(state)
    if not runs:
        die(f"no runs in {a.out}")
    write_outputs(a, settings, base, runs)


if __name__ == "__main__":
    main()
