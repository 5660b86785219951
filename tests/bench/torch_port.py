#!/usr/bin/python3
"""torch_port.py -- the built-in diffusion transformer ported to plain PyTorch, and a Flow-GRPO
rollout loop on it: the peer baseline of README's benchmark section (a researcher's Python
trainer sampling the same model).

  torch_port.py check --policy M.safetensors --rollout R.h5
      The port's velocity at every stored node of R (written by `tree-rollout --velocity
      --guidance 1 --zstd-level 0`) against the velocity the C++ model stored: max |difference|.
  torch_port.py bench --policy M.safetensors --prompts P.txt [--leaves 16 --steps 10 --guidance 3]
      Independent SDE trajectories (Flow-GRPO's sampler, its kernel and log-probabilities) for
      every prompt, timed; prints model rows/s and leaves/s as JSON, with the BLAS and threads.
  torch_port.py profile --policy M.safetensors [--max-batch 256] [--backward]
      Time by op of the model's forward (or forward + backward) at one batch, from torch's
      profiler: self CPU time per ATen op, largest first, as a tab-separated table.

Run with Debian's /usr/bin/python3 and python3-torch 1.13. --tuned applies the tools' own settings:
OpenBLAS and torch's intra-op pool both on every core, with pools that sleep when idle
(OMP_WAIT_POLICY=passive, OPENBLAS_THREAD_TIMEOUT=4, set before torch loads), and glibc keeping
freed memory in its heap (mallopt); without it the defaults of a fresh Python process run.
"""
import argparse
import ctypes
import json
import math
import os
import re
import struct
import sys
import time

ARGS = None


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["check", "bench", "profile"])
    p.add_argument("--policy", required=True)
    p.add_argument("--rollout")
    p.add_argument("--prompts")
    p.add_argument("--leaves", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--noise", type=float, default=0.7)
    p.add_argument("--max-batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=2, help="timed rollouts; the fastest is reported")
    p.add_argument("--tuned", action="store_true")
    p.add_argument("--backward", action="store_true", help="profile: forward + backward of a squared loss")
    return p.parse_args()


# Imported as a module (scripts/text_paths.py), the port is the model alone: untuned, no command.
ARGS = parse_args() if __name__ == "__main__" else argparse.Namespace(tuned=False)
CORES = len(os.sched_getaffinity(0))
if ARGS.tuned:  # before torch loads OpenBLAS and OpenMP: both read these at start-up
    os.environ["OPENBLAS_NUM_THREADS"] = str(CORES)
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = "4"
    os.environ["OMP_WAIT_POLICY"] = "passive"
    libc = ctypes.CDLL("libc.so.6")
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    libc.mallopt(M_MMAP_MAX, 0)
    libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

if ARGS.tuned:
    torch.set_num_threads(CORES)
    torch.set_num_interop_threads(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n])
    meta = header.pop("__metadata__", {})
    data = memoryview(blob)[8 + n:]
    dtypes = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=dtypes[e["dtype"]]).reshape(e["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta


def sincos_1d(n, d):
    half = d // 2
    omega = torch.pow(10000.0, -torch.arange(half, dtype=torch.float64) / half)
    angles = torch.outer(torch.arange(n, dtype=torch.float64), omega)
    return torch.cat([torch.sin(angles), torch.cos(angles)], 1)


def sincos_2d(g, w):
    one_d = sincos_1d(g, w // 2)
    rows = one_d.unsqueeze(1).expand(g, g, w // 2)
    cols = one_d.unsqueeze(0).expand(g, g, w // 2)
    return torch.cat([rows, cols], 2).reshape(1, g * g, w).float()


def modulate(x, shift, scale):
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def layer_norm(x):
    return F.layer_norm(x, (x.shape[-1],), eps=1e-6)


class JointBlock(nn.Module):
    def __init__(self, w, heads, mlp):
        super().__init__()
        self.heads = heads
        for s in ("img", "txt"):
            setattr(self, s + "_mod", nn.Linear(w, 6 * w))
            setattr(self, s + "_qkv", nn.Linear(w, 3 * w))
            setattr(self, s + "_proj", nn.Linear(w, w))
            setattr(self, s + "_fc1", nn.Linear(w, mlp * w))
            setattr(self, s + "_fc2", nn.Linear(mlp * w, w))

    def forward(self, img, txt, c, key_mask):
        sc = F.silu(c)
        im, tm = self.img_mod(sc).chunk(6, 1), self.txt_mod(sc).chunk(6, 1)
        B, N, W = img.shape
        L, hd = txt.shape[1], W // self.heads
        qkv = torch.cat([self.img_qkv(modulate(layer_norm(img), im[0], im[1])),
                         self.txt_qkv(modulate(layer_norm(txt), tm[0], tm[1]))], 1)
        qkv = qkv.view(B, N + L, 3, self.heads, hd).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(qkv[0], qkv[1].transpose(-2, -1)) / math.sqrt(hd)
        scores = scores.masked_fill(~key_mask.view(B, 1, 1, N + L), float("-inf"))
        attn = torch.matmul(torch.softmax(scores, -1), qkv[2]).transpose(1, 2).reshape(B, N + L, W)
        img = img + im[2].unsqueeze(1) * self.img_proj(attn[:, :N])
        txt = txt + tm[2].unsqueeze(1) * self.txt_proj(attn[:, N:])
        img = img + im[5].unsqueeze(1) * self.img_fc2(
            F.gelu(self.img_fc1(modulate(layer_norm(img), im[3], im[4])), approximate="tanh"))
        txt = txt + tm[5].unsqueeze(1) * self.txt_fc2(
            F.gelu(self.txt_fc1(modulate(layer_norm(txt), tm[3], tm[4])), approximate="tanh"))
        return img, txt


class TextLayer(nn.Module):
    def __init__(self, w, heads, mlp_ratio):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(w, 3 * w), nn.Linear(w, w)
        self.fc1, self.fc2 = nn.Linear(w, mlp_ratio * w), nn.Linear(mlp_ratio * w, w)

    def forward(self, txt, mask):
        B, L, W = txt.shape
        qkv = self.qkv(layer_norm(txt)).view(B, L, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        scores = torch.matmul(qkv[0], qkv[1].transpose(-2, -1)) / math.sqrt(W // self.heads)
        scores = scores.masked_fill(~mask.view(B, 1, 1, L), float("-inf"))
        x = txt + self.proj(torch.matmul(torch.softmax(scores, -1), qkv[2]).transpose(1, 2).reshape(B, L, W))
        return x + self.fc2(F.gelu(self.fc1(layer_norm(x)), approximate="tanh"))


class Dit(nn.Module):
    """lib/model/builtin_dit.cpp, line by line (sin-cos image positions, either text positions, output
    convolution, velocity)."""

    def __init__(self, cfg, vocab):
        super().__init__()
        self.cfg = cfg
        w, p, ch = cfg["width"], cfg["patch"], cfg["channels"]
        self.patch_embed = nn.Linear(ch * p * p, w)
        self.time_fc1, self.time_fc2 = nn.Linear(w, w), nn.Linear(w, w)
        self.token_embed = nn.Embedding(vocab, w)
        self.text_pool = nn.Linear(w, w) if cfg.get("text_pool", "mean") == "mean" else None
        self.register_buffer("image_pos", sincos_2d(cfg["image_size"] // p, w))
        if cfg.get("text_pos_embed", "learned") == "sincos":
            self.register_buffer("text_pos", sincos_1d(cfg["max_text_tokens"], w).unsqueeze(0).float())
        else:
            self.text_pos = nn.Parameter(torch.zeros(1, cfg["max_text_tokens"], w))
        self.text_encoder = nn.ModuleList(TextLayer(w, cfg["heads"], cfg["mlp_ratio"])
                                          for _ in range(cfg.get("text_layers", 0)))
        self.blocks = nn.ModuleList(JointBlock(w, cfg["heads"], cfg["mlp_ratio"]) for _ in range(cfg["depth"]))
        self.final_mod = nn.Linear(w, 2 * w)
        self.final_out = nn.Linear(w, cfg["out_conv"] * p * p)
        self.smooth = nn.Conv2d(cfg["out_conv"], ch, 3, padding=1)

    def forward(self, x, sigma, tokens, mask):
        txt, pooled = self.encode_text(tokens, mask)
        return self.denoise(x, sigma, txt, pooled, mask)

    def encode_text(self, tokens, mask):
        """The text tokens that enter the joint blocks, and their masked mean (the pooled vector
        that joins the timestep in every block's modulation)."""
        txt = self.token_embed(tokens) + self.text_pos[:, :tokens.shape[1]]
        for layer in self.text_encoder:
            txt = layer(txt, mask)
        maskf = mask.to(txt.dtype).unsqueeze(2)
        return txt, (txt * maskf).sum(1) / maskf.sum(1).clamp_min(1.0)

    def denoise(self, x, sigma, txt, pooled, mask):
        """The velocity from encoded text: split from forward so that a diagnostic can feed the
        two text paths (tokens for attention, pooled vector for modulation) from different prompts."""
        B, C = x.shape[0], self.cfg["channels"]
        p = self.cfg["patch"]
        g, W = self.cfg["image_size"] // p, self.cfg["width"]
        patches = x.view(B, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(B, g * g, C * p * p)
        img = self.patch_embed(patches) + self.image_pos
        half = W // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
        args = (sigma.float() * 1000.0).unsqueeze(1) * freqs.unsqueeze(0)
        temb = torch.cat([torch.cos(args), torch.sin(args)], 1).to(img.dtype)
        c = self.time_fc2(F.silu(self.time_fc1(temb)))
        if self.text_pool is not None:
            c = c + self.text_pool(pooled)
        key_mask = torch.cat([torch.ones(B, img.shape[1], dtype=torch.bool), mask], 1)
        for block in self.blocks:
            img, txt = block(img, txt, c, key_mask)
        fm = self.final_mod(F.silu(c)).chunk(2, 1)
        out = self.final_out(modulate(layer_norm(img), fm[0], fm[1]))
        co = out.shape[2] // (p * p)
        img_map = out.view(B, g, g, co, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, co, g * p, g * p)
        return self.smooth(img_map)


def load_policy(path):
    tensors, meta = read_safetensors(path)
    cfg = json.loads(meta["config"])
    if cfg.get("pos_embed") != "sincos" or cfg.get("prediction", "velocity") != "velocity" or not cfg.get("out_conv"):
        sys.exit("torch_port.py: %s: the port covers sincos positions, an output convolution and velocity "
                 "prediction" % path)
    vocab = json.loads(meta["vocabulary"])
    model = Dit(cfg, len(vocab))
    state = {k: v for k, v in tensors.items() if k in dict(model.named_parameters())}
    missing = model.load_state_dict(state, strict=False).missing_keys
    if [k for k in missing if k not in dict(model.named_buffers())]:  # fixed positions are not stored
        sys.exit("torch_port.py: %s: missing %s" % (path, missing))
    model.eval()
    return model, cfg, {w: i for i, w in enumerate(vocab)}


def encode(texts, ids, max_tokens):
    """The word tokenizer of lib/model/tokenizer.cpp; the empty prompt is the null token."""
    tokens = torch.zeros(len(texts), max_tokens, dtype=torch.long)
    mask = torch.zeros(len(texts), max_tokens, dtype=torch.bool)
    for b, text in enumerate(texts):
        words = [ids.get(w, 2) for w in re.findall(r"[a-z0-9]+", text.lower())][:max_tokens] or [1]
        tokens[b, :len(words)] = torch.tensor(words)
        mask[b, :len(words)] = True
    return tokens, mask


def shifted_sigmas(steps, shift=3.0):
    s = [shift * (1 - i / steps) / (1 + (shift - 1) * (1 - i / steps)) for i in range(steps + 1)]
    s[0], s[-1] = 1.0, 0.0
    return s


def check(model, cfg, vocab):
    import h5py
    with h5py.File(ARGS.rollout, "r") as f:
        sigmas = f["rollout/sigmas"][()]
        texts = [t.decode() if isinstance(t, bytes) else t for t in f["prompts/text"][()]]
        prompt, step = f["nodes/prompt"][()], f["nodes/step"][()]
        latent, stored = f["nodes/latent"][()], f["nodes/velocity"][()]
    keep = np.isfinite(stored.reshape(len(stored), -1)).all(1)
    tokens, mask = encode([texts[p] for p in prompt[keep]], vocab, cfg["max_text_tokens"])
    with torch.no_grad():
        v = model(torch.from_numpy(latent[keep]), torch.tensor(sigmas[step[keep]], dtype=torch.float32), tokens, mask)
    diff = float((v - torch.from_numpy(stored[keep])).abs().max())
    print(json.dumps({"nodes": int(keep.sum()), "max_abs_difference": diff,
                      "max_abs_velocity": float(np.abs(stored[keep]).max())}))
    return 0 if diff < 1e-3 else 1


def guided(model, x, sigma, tokens, mask, null_tokens, null_mask, w, max_rows):
    """Classifier-free guidance in chunks of max_rows model rows, as the tools batch it."""
    out, chunk = [], max(1, max_rows // 2)
    for b in range(0, x.shape[0], chunk):
        xs, n = x[b:b + chunk], min(chunk, x.shape[0] - b)
        v = model(torch.cat([xs, xs]), torch.full((2 * n,), sigma), torch.cat([tokens[b:b + n], null_tokens[:n]]),
                  torch.cat([mask[b:b + n], null_mask[:n]]))
        out.append(v[n:] + w * (v[:n] - v[n:]))
    return torch.cat(out)


def rollout(model, cfg, tokens, mask, null_tokens, null_mask, sigmas):
    """Flow-GRPO's sampler: every step an SDE step of its kernel, log-probabilities kept."""
    torch.manual_seed(0)
    x = torch.randn(tokens.shape[0], cfg["channels"], cfg["image_size"], cfg["image_size"])
    log_probs = []
    for i in range(len(sigmas) - 1):
        s, sn = sigmas[i], sigmas[i + 1]
        v = guided(model, x, s, tokens, mask, null_tokens, null_mask, ARGS.guidance, ARGS.max_batch)
        dt = sn - s
        if i == len(sigmas) - 2:  # the step to sigma 0 is deterministic
            x = x + v * dt
            continue
        st = sigmas[1] if s == 1.0 else s
        c = ARGS.noise * math.sqrt(s / (1 - st))
        mean = x + (v + c * c / (2 * s) * (x + (1 - s) * v)) * dt
        std = c * math.sqrt(-dt)
        x = mean + std * torch.randn_like(x)
        log_probs.append((-(x - mean) ** 2 / (2 * std * std) - math.log(std) - 0.5 * math.log(2 * math.pi))
                         .double().mean((1, 2, 3)))
    return x, torch.stack(log_probs, 1)


def bench(model, cfg, vocab):
    texts = [t for t in open(ARGS.prompts).read().splitlines() if t.strip()]
    rows = [t for t in texts for _ in range(ARGS.leaves)]
    tokens, mask = encode(rows, vocab, cfg["max_text_tokens"])
    null_tokens, null_mask = encode([""] * min(len(rows), ARGS.max_batch), vocab, cfg["max_text_tokens"])
    sigmas = shifted_sigmas(ARGS.steps)
    times = []
    with torch.no_grad():
        for _ in range(ARGS.repeat):
            start = time.perf_counter()
            rollout(model, cfg, tokens, mask, null_tokens, null_mask, sigmas)
            times.append(time.perf_counter() - start)
    best = min(times)
    model_rows = len(rows) * ARGS.steps * (2 if ARGS.guidance != 1.0 else 1)
    blas = re.findall(r"BLAS_INFO=(\w+)", torch.__config__.show())
    print(json.dumps({
        "sampler": "python flow-grpo (independent SDE)", "tuned": ARGS.tuned, "prompts": len(texts),
        "leaves_per_prompt": ARGS.leaves, "steps": ARGS.steps, "guidance": ARGS.guidance, "seconds": best,
        "seconds_all": times, "model_rows_per_s": model_rows / best, "leaves_per_s": len(rows) / best,
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "openblas_threads": os.environ.get("OPENBLAS_NUM_THREADS", "default (every core)"),
        "blas": blas[0] if blas else "?", "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "default"), "mallopt_heap_kept": ARGS.tuned}))
    return 0


def profile(model, cfg, vocab):
    """Self CPU time by ATen op over a few passes at batch --max-batch, after a warm-up pass."""
    b = ARGS.max_batch
    torch.manual_seed(0)
    x = torch.randn(b, cfg["channels"], cfg["image_size"], cfg["image_size"])
    sigma = torch.rand(b)
    tokens, mask = encode(["two red circles left of a blue square"] * b, vocab, cfg["max_text_tokens"])

    def step():
        if ARGS.backward:
            model.zero_grad(set_to_none=True)
            model(x, sigma, tokens, mask).pow(2).mean().backward()
        else:
            with torch.no_grad():
                model(x, sigma, tokens, mask)

    step()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(ARGS.repeat):
            step()
    events = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    print("op\tshare\tms_per_pass\tcalls_per_pass")
    for e in sorted(events, key=lambda e: -e.self_cpu_time_total):
        if e.self_cpu_time_total / total < 0.005:
            break
        print("%s\t%.1f%%\t%.2f\t%d" % (e.key, 100.0 * e.self_cpu_time_total / total,
                                      e.self_cpu_time_total / 1000.0 / ARGS.repeat, e.count // ARGS.repeat))
    print("# %s, batch %d, depth %d, %d passes, %.1f ms per pass, torch %d threads" % (
        "forward+backward" if ARGS.backward else "forward", b, cfg["depth"], ARGS.repeat,
        total / 1000.0 / ARGS.repeat, torch.get_num_threads()))
    return 0


def main():
    model, cfg, vocab = load_policy(ARGS.policy)
    if ARGS.command == "profile":
        return profile(model, cfg, vocab)
    if ARGS.command == "check":
        if not ARGS.rollout:
            sys.exit("torch_port.py check: --rollout is required")
        return check(model, cfg, vocab)
    if not ARGS.prompts:
        sys.exit("torch_port.py bench: --prompts is required")
    return bench(model, cfg, vocab)


if __name__ == "__main__":
    sys.exit(main())
