# python_export.sh -- the path from PyTorch: schemas/export_sd3_example.py builds a small
# SD3-style transformer with PEFT-named LoRA adapters, a latent decoder and a prompt file, and
# this test runs them through every stage: tree-rollout (diffusers' SD3 schedule), score through
# --decoder (built-in reward and the example reward process), advantage, update --trainable lora_,
# treerpo-model export; the adapters load back in Python and compute what the C++ side computes.
# Then the same in bfloat16, and the errors a user of this path meets.
source "$(dirname "$0")/lib.sh"
"$PYTHON" -c "import torch" 2>/dev/null || { echo "SKIP: $PYTHON has no torch (apt-get install python3-torch)"; exit 77; }
EXPORTER="$SRC/schemas/export_sd3_example.py"
export_names=(--trainable lora_ --strip-prefix net.transformer.)

# --- float32 ----------------------------------------------------------------------------------
"$PYTHON" "$EXPORTER" f32 >export.json 2>export.err && pass || fail "export: $(cat export.err)"
treerpo-model info --policy f32/policy.pt --trainable lora_ >info.txt && grep -q "^timestep: 1000sigma" info.txt &&
  grep -q "^output: velocity" info.txt && grep -q "(4096 trainable)" info.txt && pass || fail "info: $(cat info.txt)"
tree-rollout --policy f32/policy.pt --prompts f32/prompts.h5 --steps 6 --guidance 3 --schedule sd3 --seed 1 \
  -o r.h5 -q && pass || fail "rollout"
# The schedule is diffusers' FlowMatchEulerDiscreteScheduler's (shift 3), computed here in float32 as it does.
"$PYTHON" - <<'PY' && pass || fail "sd3 schedule"
import h5py, numpy as np
ts = np.linspace(1, 1000, 1000, dtype=np.float32)[::-1] / 1000
s = 3 * ts / (1 + 2 * ts)
t = np.linspace(float(s[0]) * 1000, float(s[-1]) * 1000, 6) / 1000
want = np.append(3 * t / (1 + 2 * t), 0.0)
got = h5py.File("r.h5")["rollout/sigmas"][()]
assert np.allclose(got, want, rtol=1e-6, atol=1e-7), (got, want)
PY
score --reward brightness --decoder f32/decoder.pt r.h5 -o s.h5 -q && pass || fail "score through the decoder"
score --reward-process "$PYTHON $SRC/schemas/example_reward_process.py" --decoder f32/decoder.pt r.h5 -o sp.h5 -q &&
  pass || fail "score through the decoder with the reward process"
advantage --method tree s.h5 -o a.h5 -q && pass || fail "advantage"
update --policy f32/policy.pt a.h5 --trainable lora_ --lr 1e-3 --threads 1 --metrics m.jsonl -o p2.pt -q 2>upd.err &&
  [ ! -s upd.err ] && pass || fail "update --trainable lora_: $(cat upd.err)"
"$PYTHON" - <<'PY' && pass || fail "replay check"
import json
j = [json.loads(l) for l in open("m.jsonl")][-1]
assert j["replay_max_ratio_dev"] < 1e-5, j["replay_max_ratio_dev"]
PY
treerpo-model export --policy f32/policy.pt -o all0.safetensors -q &&
  treerpo-model export --policy p2.pt -o all2.safetensors -q && pass || fail "export all"
"$PYTHON" - <<'PY' && pass || fail "only the LoRA tensors moved"
import sys; sys.path.insert(0, __import__("os").environ["SRC"] + "/schemas")
from export_sd3_example import read_safetensors
import torch
a, b = read_safetensors("all0.safetensors"), read_safetensors("all2.safetensors")
assert a.keys() == b.keys()
moved = {k for k in a if not torch.equal(a[k], b[k])}
assert moved and all("lora_" in k for k in moved), sorted(moved)[:3]
assert len(moved) == sum("lora_" in k for k in a), (len(moved), "LoRA tensors")
PY
treerpo-model export --policy p2.pt "${export_names[@]}" -o lora.safetensors -q && pass || fail "export lora"
"$PYTHON" "$EXPORTER" f32 --check-export lora.safetensors --updated p2.pt >check.json 2>check.err &&
  pass || fail "adapters reload: $(cat check.err)"
treerpo-model export --policy p2.pt "${export_names[@]}" --peft-names -o peft.safetensors -q && "$PYTHON" - <<'PY' && pass || fail "peft names"
import json, struct
with open("peft.safetensors", "rb") as f:
    header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
names = sorted(k for k in header if k != "__metadata__")
assert "transformer_blocks.0.attn.to_q.lora_A.weight" in names, names[:4]
assert not any(".default." in k for k in names)
PY
run_case strip-prefix 64 "does not start with the prefix to strip" -- \
  treerpo-model export --policy p2.pt --trainable lora_ --strip-prefix other. -o x.safetensors
# Without --trainable every weight of the archive trains: a warning says so.
update --policy f32/policy.pt a.h5 --until 1 --threads 1 -o all.pt 2>warn.err; grep -q "no --trainable" warn.err &&
  pass || fail "no warning without --trainable: $(cat warn.err)"

# --- the errors of this path ------------------------------------------------------------------
run_case traced-f32-in-bf16 65 "policy.pt: forward failed in bfloat16.*trace it in bfloat16" -- \
  tree-rollout --policy f32/policy.pt --dtype bfloat16 --prompts f32/prompts.h5 --steps 6 -o x.h5
run_case info-traced-f32-in-bf16 65 "forward failed in bfloat16" -- treerpo-model info --policy f32/policy.pt --dtype bfloat16
"$PYTHON" - <<'PY'
import h5py, numpy as np
with h5py.File("f32/prompts.h5") as f, h5py.File("wide.h5", "w") as g:
    for k, v in f.attrs.items(): g.attrs[k] = v
    p = g.create_group("prompts")
    for k in f["prompts"]: p[k] = f["prompts"][k][()]
    del p["conditioning"]
    p["conditioning"] = np.zeros(f["prompts/conditioning"].shape[:2] + (40,), np.float32)
PY
run_case embedding-size 65 "wide.h5: /prompts/conditioning: embeddings \[6, 12, 40\] but .*takes \[P, 12, 48\]" -- \
  tree-rollout --policy f32/policy.pt --prompts wide.h5 --steps 6 -o x.h5
# A bare trace (no declared sizes): the failing forward is still one line naming the sizes.
"$PYTHON" -c "
import torch; m = torch.jit.load('f32/policy.pt'); torch.jit.save(m.net, 'bare.pt')"
run_case embedding-size-undeclared 65 "bare.pt: forward failed in float32 on latents .*embeddings \[.*, 12, 40\]" -- \
  tree-rollout --policy bare.pt --timestep-convention 1000sigma --latent-shape 16,16,16 --prompts wide.h5 --steps 6 -o x.h5

# --- bfloat16: traced in bfloat16, float32 master weights, replay still exact -------------------
"$PYTHON" "$EXPORTER" bf --dtype bfloat16 >/dev/null 2>bf.err && pass || fail "export bf16: $(cat bf.err)"
tree-rollout --policy bf/policy.pt --dtype bfloat16 --prompts bf/prompts.h5 --steps 6 --guidance 3 --schedule sd3 \
  --seed 1 -o rb.h5 -q && score --reward brightness --decoder bf/decoder.pt rb.h5 -o sb.h5 -q &&
  advantage --method tree sb.h5 -o ab.h5 -q && pass || fail "bf16 rollout, score, advantage"
run_case dtype-mismatch 65 "ran the policy in bfloat16 and this update runs it in float32 \(give --dtype bfloat16\)" -- \
  update --policy bf/policy.pt ab.h5 --trainable lora_ -o x.pt
update --policy bf/policy.pt --dtype bfloat16 ab.h5 --trainable lora_ --lr 1e-3 --threads 1 --metrics mb.jsonl \
  -o pb.pt -q && pass || fail "bf16 update"
treerpo-model export --policy bf/policy.pt --dtype bfloat16 "${export_names[@]}" -o lb0.safetensors -q &&
  treerpo-model export --policy pb.pt --dtype bfloat16 "${export_names[@]}" -o lb.safetensors -q &&
  pass || fail "bf16 export"
"$PYTHON" - <<'PY' && pass || fail "bf16: replay and float32 master weights"
import json, sys, os, torch
sys.path.insert(0, os.environ["SRC"] + "/schemas")
from export_sd3_example import read_safetensors
j = [json.loads(l) for l in open("mb.jsonl")][-1]
assert j["replay_max_ratio_dev"] < 1e-5, j["replay_max_ratio_dev"]
a, b = read_safetensors("lb0.safetensors"), read_safetensors("lb.safetensors")
state = read_safetensors("pb.pt.extra.safetensors")
moved_bf16 = moved_master = total = 0
for k in a:
    if "lora_A" not in k:
        continue
    master = state["optimizer.net.transformer." + k + ".master"]
    # the weights are the master copies rounded to bfloat16
    assert torch.equal(master.to(torch.bfloat16).float(), b[k]), k
    moved_bf16 += (a[k] != b[k]).sum().item()
    moved_master += (master != a[k]).sum().item()
    total += a[k].numel()
print(f"bf16: |rho - 1| at replay {j['replay_max_ratio_dev']:.2g}; LoRA-A elements moved: "
      f"{moved_master} of {total} in the float32 masters, {moved_bf16} in bfloat16")
assert moved_master == total, (moved_master, total)
PY
"$PYTHON" "$EXPORTER" bf --dtype bfloat16 --check-export lb.safetensors --updated pb.pt >/dev/null 2>checkb.err &&
  pass || fail "bf16 adapters reload: $(cat checkb.err)"
finish
