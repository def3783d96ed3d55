"""Peak memory of one NPO step (LoRA; reference = adapters disabled) against one gradient-ascent step on
the same model and batch; also NPO's forget term alone (what the reference costs) and GradDiff (GA with
the same retain term as NPO). Each step runs in a fresh subprocess; on CPU the figure is the process's
peak RSS growth during the step (ru_maxrss after minus before), on CUDA torch's peak allocation.

Run: python perf/memory_npo_vs_ga.py [--model smollm2-135m] [--batch 4] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, torch
from unlearn.models import LoraSpec, Reference, load_model
from unlearn.scoring import collate, encode_qa
from unlearn.train import StepBatch
from unlearn.methods.grad_ascent import grad_ascent
from unlearn.methods.npo import npo, npo_forget_term
from unlearn.methods.grad_diff import grad_diff
from unlearn.methods import make_config
from unlearn.benchmarks.tofu.data import synthetic_tofu

method, model, batch, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
lm = load_model(model, lora=LoraSpec(r=16, alpha=32), device=device)
rows = synthetic_tofu("forget10", 40).forget[:batch]
retain = synthetic_tofu("forget10", 40).retain_train[:batch]
b = StepBatch(collate([encode_qa(lm.tokenizer, r.question, r.answer) for r in rows], lm.tokenizer.pad_token_id, device),
              collate([encode_qa(lm.tokenizer, r.question, r.answer) for r in retain], lm.tokenizer.pad_token_id, device))
ref = Reference(lm.model)
opt = torch.optim.AdamW([p for p in lm.model.parameters() if p.requires_grad], lr=1e-5)
def rss(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
if device.startswith("cuda"):
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated() / 2**20
else:
    base = rss()
if method == "npo":  # the full method: forget term against pi_ref + alpha * NLL(retain)
    loss = npo(lm.model, b, make_config("npo"), ref).loss
elif method == "npo_forget":  # the forget term alone: what the reference adds on top of gradient ascent
    loss = npo_forget_term(lm.model, b.forget, 0.1, ref)
elif method == "grad_diff":  # gradient ascent + the same retain term as npo
    loss = grad_diff(lm.model, b, make_config("grad_diff"), None).loss
else:
    loss = grad_ascent(lm.model, b, None, None).loss
loss.backward(); opt.step()
peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else rss()
print(json.dumps({"method": method, "before_mb": base, "peak_mb": peak, "step_mb": peak - base}))
"""


def measure(method: str, model: str, batch: int, device: str) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, method, model, str(batch), device], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import statistics

    methods = ("grad_ascent", "npo_forget", "grad_diff", "npo")
    results = {m: [measure(m, args.model, args.batch, args.device) for _ in range(args.repeats)] for m in methods}
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("peak_mb", "step_mb")} for m, rs in results.items()}
    for m, v in med.items():
        print(f"{m:12s} peak {v['peak_mb']:8.1f} MB   step growth {v['step_mb']:7.1f} MB   (median of {args.repeats})")
    for a, b in (("npo_forget", "grad_ascent"), ("npo", "grad_diff"), ("npo", "grad_ascent")):
        print(f"ratio {a} / {b}: peak {med[a]['peak_mb'] / med[b]['peak_mb']:.3f}, "
              f"step growth {med[a]['step_mb'] / max(med[b]['step_mb'], 1e-9):.3f}")


if __name__ == "__main__":
    main()
