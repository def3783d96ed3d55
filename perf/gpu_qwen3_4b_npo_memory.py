"""Peak GPU memory of one QLoRA NPO step on a Qwen3-4B-sized model (the 10 GiB budget's device check).

Builds the published Qwen3-4B architecture (config values below, from Qwen/Qwen3-4B's config.json) with
random weights in bf16, saves it as safetensors, loads it back through ``unlearn.models.load_model`` as
NF4 4-bit with LoRA r16 on every linear projection (exactly the research setting's code path), and runs:

1. one NPO forget-term step (policy + adapters-disabled reference) on a batch of 4 x 256 tokens;
2. one full NPO step (forget term + alpha * NLL on a retain batch of the same size);
3. one gradient-ascent step on the same forget batch, as the baseline measured in the same process.

It prints ``torch.cuda.max_memory_allocated`` (and reserved) after loading and for each step, in GiB.
Token ids are random (memory does not depend on them); the first 64 of the 256 positions are the prompt
and carry no loss, as in a TOFU row. ``--small`` shrinks the model so that the script can be checked on
a CPU (4-bit layers run there with bitsandbytes >= 0.45).

Run: python perf/gpu_qwen3_4b_npo_memory.py [--device cuda] [--batch 4] [--seq 256] [--small]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unlearn.models.shapes import QWEN3_4B_CONFIG  # noqa: E402  (Qwen/Qwen3-4B's published config.json)

QWEN3_4B = dict(QWEN3_4B_CONFIG, bos_token_id=151643, eos_token_id=151645)
SMALL = dict(QWEN3_4B, vocab_size=4096, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
             num_attention_heads=4, num_key_value_heads=2, head_dim=64)


def build_random(out: Path, cfg: dict, device: str) -> int:
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from unlearn.models import tiny

    config = Qwen3Config(**cfg)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3ForCausalLM(config).to(torch.bfloat16)
    n = sum(p.numel() for p in model.parameters())
    model.save_pretrained(out, safe_serialization=True)
    tiny.train_tiny_tokenizer().save_pretrained(out)  # any tokenizer: the step uses random ids
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return n


def random_batch(batch: int, seq: int, vocab: int, device: str, seed: int) -> dict[str, torch.Tensor]:
    from unlearn.scoring import IGNORE

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (batch, seq), generator=g)
    labels = ids.clone()
    labels[:, :64] = IGNORE
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device), "labels": labels.to(device)}


def gib(x: int) -> float:
    return x / 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--small", action="store_true", help="a 2-layer model of the same family, for a CPU check")
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()

    from unlearn.methods import make_config
    from unlearn.methods.grad_ascent import grad_ascent
    from unlearn.methods.npo import npo, npo_forget_term
    from unlearn.models import LoraSpec, Reference, load_model
    from unlearn.train import StepBatch

    cuda = args.device.startswith("cuda")
    cfg = SMALL if args.small else QWEN3_4B
    work = Path(args.workdir or tempfile.mkdtemp(prefix="qwen3-4b-random-"))
    t0 = time.perf_counter()
    n_params = build_random(work, cfg, args.device)
    t_build = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    lm = load_model(str(work), quant="4bit", lora=LoraSpec(r=16, alpha=32), device=args.device)
    t_load = time.perf_counter() - t0
    model = lm.model
    model.train()
    ref = Reference(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-5)
    report: dict = {"device": torch.cuda.get_device_name() if cuda else "cpu", "params": n_params,
                    "trainable_params": sum(p.numel() for p in trainable), "batch": args.batch, "seq": args.seq,
                    "gradient_checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)),
                    "build_s": round(t_build, 1), "load_s": round(t_load, 1), "torch": torch.__version__}
    if cuda:
        torch.cuda.synchronize()
        report["after_load_allocated_gib"] = gib(torch.cuda.memory_allocated())
        report["load_peak_allocated_gib"] = gib(torch.cuda.max_memory_allocated())

    forget = random_batch(args.batch, args.seq, cfg["vocab_size"], args.device, 1)
    retain = random_batch(args.batch, args.seq, cfg["vocab_size"], args.device, 2)
    batch = StepBatch(forget, retain)
    steps = {
        "npo_forget_term": lambda: npo_forget_term(model, forget, 0.1, ref),
        "npo_full": lambda: npo(model, batch, make_config("npo"), ref).loss,
        "grad_ascent": lambda: grad_ascent(model, batch, None, None).loss,
    }
    # One unmeasured warm-up step first, so AdamW's state exists before every measured step (otherwise the
    # first step measured would be the only one without it, and the comparison would depend on the order).
    steps["grad_ascent"]().backward()
    opt.step()
    for name, fn in steps.items():
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        loss = fn()
        loss.backward()
        opt.step()
        if cuda:
            torch.cuda.synchronize()
        entry = {"loss": float(loss.detach()), "seconds": round(time.perf_counter() - t0, 2)}
        if cuda:
            entry["peak_allocated_gib"] = gib(torch.cuda.max_memory_allocated())
            entry["peak_reserved_gib"] = gib(torch.cuda.max_memory_reserved())
        report[name] = entry
        print(name, json.dumps(entry), flush=True)
    print(json.dumps(report, indent=1))
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
