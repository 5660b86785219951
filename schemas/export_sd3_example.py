#!/usr/bin/env python3
"""export_sd3_example.py -- example: export an SD3-style transformer with LoRA adapters to treerpo.

Builds, in plain PyTorch (no diffusers, no peft), a small model of the family of SD3's MMDiT:
patchified latents with 16 channels, joint attention over image and text tokens, adaLN
modulation from the timestep and the pooled text embedding, timestep convention 1000 sigma,
and LoRA adapters on the attention projections named the way PEFT names them
(`transformer_blocks.0.attn.to_q.lora_A.default.weight`). It writes into OUTDIR:

    policy.pt     the policy: forward(latents, timestep, encoder_hidden_states, pooled) -> velocity,
                  traced, inside a scripted shell that records treerpo's conventions
    decoder.pt    a tiny latent decoder: forward(latents [B, 16, h, w]) -> images [B, 3, 8h, 8w] in [-1, 1]
    prompts.h5    a prompt file (man treerpo-prompts(5)) with synthetic text embeddings
    transformer.pt  the transformer's own state dict (torch.save), what `--check-export` reloads onto

For a real model, replace the one line marked SWAP below with

    transformer = SD3Transformer2DModel.from_pretrained(MODEL, subfolder="transformer")

and `add_lora(...)` with `transformer.add_adapter(LoraConfig(r=..., target_modules=[...]))`:
the wrapper calls the transformer with diffusers' keyword arguments and reads `[0]` of its output,
and the adapters get the same names. Runs in seconds on 2 cores with Debian's python3-torch:

    python3 schemas/export_sd3_example.py OUTDIR [--dtype float32|bfloat16] [--size 16] [--seed 0]
        [--dim 64 --depth 2 --heads 4 --text-tokens 12 --text-dim 48 --pooled-dim 32]
    python3 schemas/export_sd3_example.py OUTDIR --check-export lora.safetensors --updated policy2.pt

(--check-export needs the sizes the export was made with.) The second form is the round trip check: the exported adapter file loads back onto the original
transformer with `load_state_dict(strict=False)` with no unexpected key, and the transformer with
those adapters computes the same velocity as the updated TorchScript policy.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch
from torch import nn

LATENT_CHANNELS = 16   # SD3's VAE latents
PATCH = 2              # SD3's patch size
TEXT_TOKENS = 12       # SD3: 333 (77 CLIP + 256 T5)
TEXT_DIM = 48          # SD3: 4096
POOLED_DIM = 32        # SD3: 2048
PROMPTS = [
    "a red circle",
    "two blue squares",
    "a green triangle left of a yellow cross",
    "three white rings",
    "a purple square above an orange circle",
    "four small crosses",
]


class LoraLinear(nn.Module):
    """What peft's LoraLayer makes of a Linear: base_layer plus lora_A/lora_B ModuleDicts keyed by
    the adapter name, B zero at the start (so the adapted model equals the base one)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, adapter: str = "default"):
        super().__init__()
        self.base_layer = base
        self.lora_A = nn.ModuleDict({adapter: nn.Linear(base.in_features, r, bias=False)})
        self.lora_B = nn.ModuleDict({adapter: nn.Linear(r, base.out_features, bias=False)})
        nn.init.kaiming_uniform_(self.lora_A[adapter].weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B[adapter].weight)
        self.adapter = adapter
        self.scaling = alpha / r

    def forward(self, x):
        a, b = self.lora_A[self.adapter], self.lora_B[self.adapter]
        return self.base_layer(x) + b(a(x)) * self.scaling


def add_lora(transformer: nn.Module, r: int, targets=("to_q", "to_k", "to_v", "to_out.0")):
    """Wraps the attention projections named in `targets` (suffixes of module paths), as peft does."""
    for name, module in list(transformer.named_modules()):
        if isinstance(module, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets):
            parent_name, _, child = name.rpartition(".")
            parent = transformer.get_submodule(parent_name)
            setattr(parent, child, LoraLinear(module, r, alpha=r))
    for name, p in transformer.named_parameters():
        p.requires_grad_("lora_" in name)


def timestep_embedding(t, dim):
    """Sinusoidal embedding of the timestep (SD3: 256 frequencies of the 1000 sigma timestep)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Attention(nn.Module):
    """Joint attention: the image stream's to_q/to_k/to_v/to_out and the text stream's
    add_*_proj/to_add_out, attending over the concatenated tokens (diffusers' JointAttnProcessor)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.to_q, self.to_k, self.to_v = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.add_q_proj, self.add_k_proj, self.add_v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.to_out = nn.ModuleList([nn.Linear(dim, dim)])
        self.to_add_out = nn.Linear(dim, dim)

    def forward(self, x, c):
        b, n, d = x.shape
        h = self.heads
        q = torch.cat([self.to_q(x), self.add_q_proj(c)], dim=1)
        k = torch.cat([self.to_k(x), self.add_k_proj(c)], dim=1)
        v = torch.cat([self.to_v(x), self.add_v_proj(c)], dim=1)
        split = lambda t: t.view(b, -1, h, d // h).transpose(1, 2)
        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) * self.scale, dim=-1)
        out = (att @ split(v)).transpose(1, 2).reshape(b, -1, d)
        return self.to_out[0](out[:, :n]), self.to_add_out(out[:, n:])


class JointBlock(nn.Module):
    """One MMDiT block: adaLN-Zero (shift, scale, gate for attention and MLP) per stream."""

    def __init__(self, dim, heads):
        super().__init__()
        self.norm1 = nn.Linear(dim, 6 * dim)            # diffusers: norm1.linear
        self.norm1_context = nn.Linear(dim, 6 * dim)
        self.attn = Attention(dim, heads)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        self.ff_context = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"), nn.Linear(4 * dim, dim))
        for lin in (self.norm1, self.norm1_context):
            nn.init.zeros_(lin.weight)
            nn.init.zeros_(lin.bias)

    @staticmethod
    def modulate(x, shift, scale):
        return nn.functional.layer_norm(x, x.shape[-1:]) * (1 + scale[:, None]) + shift[:, None]

    def forward(self, x, c, temb):
        e = nn.functional.silu(temb)
        sx, cx, gx, smx, cmx, gmx = self.norm1(e).chunk(6, dim=-1)
        sc, cc, gc, smc, cmc, gmc = self.norm1_context(e).chunk(6, dim=-1)
        ax, ac = self.attn(self.modulate(x, sx, cx), self.modulate(c, sc, cc))
        x = x + gx[:, None] * ax
        c = c + gc[:, None] * ac
        x = x + gmx[:, None] * self.ff(self.modulate(x, smx, cmx))
        c = c + gmc[:, None] * self.ff_context(self.modulate(c, smc, cmc))
        return x, c


class TinySD3Transformer(nn.Module):
    """The interface of diffusers' SD3Transformer2DModel, at toy size: forward(hidden_states,
    timestep (1000 sigma), encoder_hidden_states, pooled_projections, return_dict) -> (velocity,)."""

    def __init__(self, size, dim=64, heads=4, depth=2, text_dim=TEXT_DIM, pooled_dim=POOLED_DIM):
        super().__init__()
        self.size = size
        self.pos_embed = nn.Conv2d(LATENT_CHANNELS, dim, PATCH, stride=PATCH)  # diffusers: pos_embed.proj
        self.pos = nn.Parameter(torch.randn(1, (size // PATCH) ** 2, dim) * 0.02)
        self.time_proj = nn.Sequential(nn.Linear(256, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.text_proj = nn.Sequential(nn.Linear(pooled_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.context_embedder = nn.Linear(text_dim, dim)
        self.transformer_blocks = nn.ModuleList([JointBlock(dim, heads) for _ in range(depth)])
        self.norm_out = nn.Linear(dim, 2 * dim)
        self.proj_out = nn.Linear(dim, PATCH * PATCH * LATENT_CHANNELS)

    def forward(self, hidden_states, timestep, encoder_hidden_states, pooled_projections, return_dict=False):
        b, ch, hh, ww = hidden_states.shape
        x = self.pos_embed(hidden_states).flatten(2).transpose(1, 2) + self.pos
        # As diffusers does: the sinusoid is computed in float32 and cast to the activations'
        # dtype. A trace freezes that dtype, so trace in the dtype you will run in.
        temb = self.time_proj(timestep_embedding(timestep, 256).to(dtype=hidden_states.dtype))
        temb = temb + self.text_proj(pooled_projections)
        c = self.context_embedder(encoder_hidden_states)
        for block in self.transformer_blocks:
            x, c = block(x, c, temb)
        shift, scale = self.norm_out(nn.functional.silu(temb)).chunk(2, dim=-1)
        x = self.proj_out(JointBlock.modulate(x, shift, scale))
        x = x.view(b, hh // PATCH, ww // PATCH, PATCH, PATCH, ch).permute(0, 5, 1, 3, 2, 4)
        return (x.reshape(b, ch, hh, ww),)


class SD3Policy(nn.Module):
    """The signature treerpo calls: forward(latents, timestep, encoder_hidden_states, pooled)."""

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, latents, timestep, encoder_hidden_states, pooled):
        return self.transformer(hidden_states=latents, timestep=timestep, encoder_hidden_states=encoder_hidden_states,
                                pooled_projections=pooled, return_dict=False)[0]


class Declared(nn.Module):
    """A scripted shell around the traced policy: scripting keeps these attributes, a trace does not."""

    def __init__(self, net, latent_shape, text_shape, pooled_dim):
        super().__init__()
        self.net = net
        self.treerpo_timestep = "1000sigma"
        self.treerpo_output = "velocity"
        self.treerpo_latent_shape = latent_shape
        self.treerpo_text_shape = text_shape
        self.treerpo_pooled_dim = pooled_dim

    def forward(self, latents, timestep, encoder_hidden_states, pooled):
        return self.net(latents, timestep, encoder_hidden_states, pooled)


class TinyDecoder(nn.Module):
    """Stand-in for the VAE decoder: latents [B, 16, h, w] -> images [B, 3, 8h, 8w] in [-1, 1]."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(LATENT_CHANNELS, 3, 1)

    def forward(self, latents):
        return torch.tanh(nn.functional.interpolate(self.conv(latents), scale_factor=8.0, mode="nearest"))


def write_prompts(path, seed, tokens=TEXT_TOKENS, text_dim=TEXT_DIM, pooled_dim=POOLED_DIM):
    """A prompt file with synthetic embeddings: a real pipeline runs SD3's CLIP and T5 encoders here."""
    import h5py
    rng = np.random.default_rng(seed)
    hidden = rng.standard_normal((len(PROMPTS), tokens, text_dim)).astype(np.float32)
    mask = np.zeros((len(PROMPTS), tokens), dtype=np.uint8)
    for i, p in enumerate(PROMPTS):
        mask[i, : min(tokens, len(p.split()))] = 1
    hidden *= mask[:, :, None]
    with h5py.File(path, "w") as f:
        f.attrs["treerpo_format"] = "prompts"
        f.attrs["treerpo_format_version"] = np.array([1, 0], dtype="<i8")
        g = f.create_group("prompts")
        g["text"] = np.array(PROMPTS, dtype=h5py.string_dtype())
        g["id"] = np.arange(len(PROMPTS), dtype="<i8")
        g["conditioning"] = hidden
        g["mask"] = mask
        g["pooled"] = rng.standard_normal((len(PROMPTS), pooled_dim)).astype(np.float32)


def build(args):
    torch.manual_seed(args.seed)
    transformer = TinySD3Transformer(args.size, args.dim, args.heads, args.depth, args.text_dim, args.pooled_dim)  # SWAP: SD3Transformer2DModel.from_pretrained(MODEL, subfolder="transformer")
    add_lora(transformer, r=4)
    # The base weights of a real checkpoint are trained; give the toy ones some structure too.
    with torch.no_grad():
        for block in transformer.transformer_blocks:
            for lin in (block.norm1, block.norm1_context):
                lin.weight.normal_(0, 0.02)
    return transformer.eval()


def export(args):
    os.makedirs(args.outdir, exist_ok=True)
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    transformer = build(args)
    torch.save(transformer.state_dict(), os.path.join(args.outdir, "transformer.pt"))
    policy = SD3Policy(transformer).to(dtype)
    example = (torch.randn(1, LATENT_CHANNELS, args.size, args.size, dtype=dtype), torch.full((1,), 500.0, dtype=dtype),
               torch.randn(1, args.text_tokens, args.text_dim, dtype=dtype), torch.randn(1, args.pooled_dim, dtype=dtype))
    with torch.no_grad():
        traced = torch.jit.trace(policy, example, check_trace=False)
    torch.jit.script(Declared(traced, [LATENT_CHANNELS, args.size, args.size], [args.text_tokens, args.text_dim],
                              args.pooled_dim)).save(os.path.join(args.outdir, "policy.pt"))
    torch.manual_seed(args.seed + 1)
    torch.jit.script(TinyDecoder().eval()).save(os.path.join(args.outdir, "decoder.pt"))
    write_prompts(os.path.join(args.outdir, "prompts.h5"), args.seed, args.text_tokens, args.text_dim, args.pooled_dim)
    n_lora = sum(p.numel() for n, p in transformer.named_parameters() if "lora_" in n)
    n_all = sum(p.numel() for p in transformer.parameters())
    print(json.dumps({"policy": "policy.pt", "decoder": "decoder.pt", "prompts": "prompts.h5", "dtype": args.dtype,
                      "latent_shape": [LATENT_CHANNELS, args.size, args.size], "parameters": n_all,
                      "lora_parameters": n_lora}))


def read_safetensors(path):
    """A safetensors reader in plain Python (the safetensors package is not needed)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        if info["dtype"] == "BF16":
            raw = np.frombuffer(data[start:end], dtype=np.uint16).astype(np.uint32) << 16
            arr = raw.view(np.float32)
        else:
            arr = np.frombuffer(data[start:end], dtype=kinds[info["dtype"]]).astype(np.float32)
        out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
    return out


def check_export(args):
    """The exported adapters load back onto the original transformer, which then computes what the
    updated TorchScript policy computes."""
    transformer = TinySD3Transformer(args.size, args.dim, args.heads, args.depth, args.text_dim, args.pooled_dim)
    add_lora(transformer, r=4)
    transformer.load_state_dict(torch.load(os.path.join(args.outdir, "transformer.pt")))
    before = {n: p.detach().clone() for n, p in transformer.state_dict().items()}
    adapters = read_safetensors(args.check_export)
    result = transformer.load_state_dict(adapters, strict=False)
    problems = []
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected keys, e.g. {result.unexpected_keys[0]}")
    moved = [n for n, p in transformer.state_dict().items() if not torch.equal(p, before[n])]
    if not moved:
        problems.append("no parameter changed: the adapters are those of the base model")
    if any("lora_" not in n for n in adapters):
        problems.append("the export holds non-LoRA tensors")
    updated = torch.jit.load(args.updated).eval()
    g = torch.Generator().manual_seed(7)
    x = torch.randn(3, LATENT_CHANNELS, args.size, args.size, generator=g)
    t = torch.tensor([900.0, 500.0, 100.0])
    hidden = torch.randn(3, args.text_tokens, args.text_dim, generator=g)
    pooled = torch.randn(3, args.pooled_dim, generator=g)
    with torch.no_grad():
        want = updated(x.to(args.torch_dtype), t.to(args.torch_dtype), hidden.to(args.torch_dtype),
                       pooled.to(args.torch_dtype)).float()
        model = SD3Policy(transformer.to(args.torch_dtype))
        got = model(x.to(args.torch_dtype), t.to(args.torch_dtype), hidden.to(args.torch_dtype),
                    pooled.to(args.torch_dtype)).float()
    diff = (got - want).abs().max().item()
    tol = 1e-5 if args.torch_dtype == torch.float32 else 3e-2
    if not diff <= tol * max(1.0, want.abs().max().item()):
        problems.append(f"velocity differs from the updated policy's by {diff:.3g}")
    print(json.dumps({"loaded": len(adapters), "unexpected": len(result.unexpected_keys), "changed": len(moved),
                      "max_velocity_diff": diff}))
    if problems:
        print("check-export: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32",
                        help="the dtype to trace in (the one tree-rollout --dtype will run)")
    parser.add_argument("--size", type=int, default=16, help="latent height and width (SD3 1024 px: 128)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=64, help="transformer width (SD3 medium: 1536)")
    parser.add_argument("--depth", type=int, default=2, help="joint blocks (SD3 medium: 24)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--text-tokens", type=int, default=TEXT_TOKENS, help="text tokens L (SD3: 333)")
    parser.add_argument("--text-dim", type=int, default=TEXT_DIM, help="text embedding size D (SD3: 4096)")
    parser.add_argument("--pooled-dim", type=int, default=POOLED_DIM, help="pooled embedding size (SD3: 2048)")
    parser.add_argument("--check-export", metavar="SAFETENSORS", help="check an exported adapter file (see above)")
    parser.add_argument("--updated", metavar="PT", help="with --check-export: the updated TorchScript policy")
    args = parser.parse_args()
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    args.torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[args.dtype]
    if args.check_export:
        if not args.updated:
            parser.error("--check-export needs --updated")
        return check_export(args)
    export(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
