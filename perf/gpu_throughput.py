"""Throughput you can trust on a GPU: every timed call after a warm-up of the same call (same shapes), each call
synchronised, the median of 3; the first (cold) call reported beside it. On a Qwen3-4B-shaped model (published
config, random weights, no download), 4-bit NF4 + LoRA, the process capped at 10 GiB of GPU memory.

    python perf/gpu_throughput.py OUT.jsonl            # on a CUDA machine
    python perf/gpu_throughput.py OUT.jsonl long       # only the full protocol's generation length (long_generation)
    python perf/gpu_throughput.py OUT.jsonl methods    # only the unlearning methods, warm (methods)
    UNLEARN_GPU_TIER_DEVICE=cpu UNLEARN_GPU_TIER_MODEL=tiny-qwen3 python perf/gpu_throughput.py OUT.jsonl

Steps (each a JSON line: cold seconds, median warm seconds, tokens, tokens/s, peak GiB):
- ``target fine-tuning``: the target recipe's NLL training (batch 16, gradient checkpointing), 2 optimiser steps;
- ``method finetune``: the finetune method (the same NLL on QA rows) at the full unlearning schedule, 2 steps;
  the pair answers whether the 5x gap the GPU tier once measured between them is a warm-up artefact;
- ``generation <engine> batch B``: greedy decoding of B prompts, 32 new tokens (a random model never stops:
  every step is full), engine ``fast`` (finished rows leave the batch; B in 16, 32, 64, 128) and ``hf``
  (transformers' generate; B in 16, 64); new tokens per second;
- ``generation dequantised bf16 batch B``: the same on a plain bf16 copy of the model (NF4 dequantised, adapters
  merged; what an evaluation could run instead of the 4-bit + LoRA model) where it fits under the cap;
- ``generation dequantised bf16 hf dynamic|static+compile batch B``: transformers' generate on that copy with the
  default cache and with a static KV cache (compiled on CUDA; the cold call holds the compilation), B in 64, 128,
  with the share of rows whose greedy tokens agree between the two;
- ``method <name>`` (the ``methods`` part): every unlearning method but retrain on 64 forget and 64 retain rows,
  2 optimiser steps per phase, from fresh seeded adapters each call (untimed), cold and warm seconds;
- ``qlora target training + save``: ``finetuned_model_dir`` with ``quant="4bit"`` (the `--quant 4bit` target
  path), its GPU peak and wall time with the dequantised save.
The CPU rehearsal checks the script end to end; its figures mean nothing.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

MODEL = os.environ.get("UNLEARN_GPU_TIER_MODEL", "qwen3-4b-random")
DEVICE = os.environ.get("UNLEARN_GPU_TIER_DEVICE", "cuda")
CAP_GIB = float(os.environ.get("UNLEARN_GPU_CAP_GIB", "10"))
CUDA = DEVICE.startswith("cuda")
REPEATS = 3
NEW_TOKENS = 32


def cap_memory():
    """The process's GPU memory capped at CAP_GIB (nothing on a CPU)."""
    if CUDA:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_GIB * 2**30 / total), 0)


def bf16_autocast():
    """bf16 autocast on CUDA, as the GPU tier evaluates; off on a CPU rehearsal."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if CUDA else torch.autocast("cpu", enabled=False)


def fresh_adapters(lm, spec) -> None:
    """Every adapter and IWAP's hooks dropped from ``lm.model``, the seeded LoRA ``spec`` added again on the same
    4-bit base (each timed call starts from the same model)."""
    from unlearn.models import add_seeded_lora, is_peft

    for h in getattr(lm.model, "_iwap_hooks", []):
        h.remove()
    base = lm.model.unload() if is_peft(lm.model) else lm.model
    lm.model = add_seeded_lora(base, spec, quantised=True, device=DEVICE)


def sync():
    if CUDA:
        torch.cuda.synchronize()


def fresh_peak():
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gib():
    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if CUDA else None


def timed(fn):
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def measure(step: str, fn, tokens: int, out, repeats: int = REPEATS, **extra) -> dict:
    """The cold call, then ``repeats`` warm calls of the same ``fn``; median of the warm ones."""
    fresh_peak()
    try:
        cold, _ = timed(fn)
        warm = [timed(fn)[0] for _ in range(repeats)]
    except torch.OutOfMemoryError as err:
        rec = {"step": step, "oom": str(err).splitlines()[0][:200], **extra}
    else:
        med = statistics.median(warm)
        rec = {"step": step, "cold_s": round(cold, 3), "warm_s": [round(w, 3) for w in warm], "median_s": round(med, 3),
               "tokens": tokens, "tokens_per_s": round(tokens / med, 1), "cold_tokens_per_s": round(tokens / cold, 1),
               "peak_gib": peak_gib(), **extra}
    rec.update(model=MODEL, device=torch.cuda.get_device_name() if CUDA else "cpu", cap_gib=CAP_GIB)
    print(json.dumps(rec), flush=True)
    out.write(json.dumps(rec) + "\n")
    out.flush()
    return rec


def static_generation(model, tok, questions, out) -> None:
    """transformers' generate with a static KV cache (on CUDA it compiles the decoding step with torch.compile:
    the cold call includes the compilation) on the dequantised bf16 model, against the same call with the default
    dynamic cache: new tokens/s, and the share of rows whose greedy tokens agree exactly."""
    from unlearn.scoring.encoding import attention_mask, chat_prompt_ids, format_prompt, pad_sequences

    for b in (64, 128):
        prompts = [chat_prompt_ids(tok, format_prompt(tok, q)) for q in questions[:b]]
        ids, mask = pad_sequences(prompts, tok.pad_token_id, left=True, device=DEVICE)
        mask = attention_mask(ids, mask, None)
        width = ids.shape[1]

        def run(**extra):
            return model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=NEW_TOKENS,
                                  min_new_tokens=NEW_TOKENS, pad_token_id=tok.pad_token_id,
                                  eos_token_id=tok.eos_token_id, temperature=None, top_p=None, top_k=None,
                                  use_cache=True, **extra)[:, width:]
        try:
            reference = run()
            measure(f"generation dequantised bf16 hf dynamic batch {b}", run, b * NEW_TOKENS, out, new_tokens=NEW_TOKENS,
                    batch_size=b, engine="hf")
            static = run(cache_implementation="static")
            agree = sum(bool(torch.equal(x, y)) for x, y in zip(static, reference)) / b
            measure(f"generation dequantised bf16 hf static+compile batch {b}", lambda: run(cache_implementation="static"),
                    b * NEW_TOKENS, out, new_tokens=NEW_TOKENS, batch_size=b, engine="hf static",
                    rows_agreeing_with_dynamic=agree)
        except Exception as err:  # noqa: BLE001 - a failed compile is a finding to record, not a reason to lose the file
            rec = {"step": f"generation static batch {b}", "error": f"{type(err).__name__}: {str(err)[:300]}"}
            print(json.dumps(rec), flush=True)
            out.write(json.dumps(rec) + "\n")
            out.flush()


def long_generation(path: str) -> None:
    """The full protocol's generation length (200 new tokens) on the 4-bit + LoRA model, the exact ``fast`` engine,
    batches of 64 and 128: new tokens/s and peak memory under the cap (``python perf/gpu_throughput.py OUT long``)."""
    from unlearn.benchmarks.tofu.benchmark import profile_for
    from unlearn.benchmarks.tofu.data import load_tofu
    from unlearn.models import load_model, resolve_model_source
    from unlearn.scoring import generate

    cap_memory()
    profile = profile_for("qwen3-4b-random", dry_run=False, max_steps=2, precision="bf16" if CUDA else "fp32",
                          protocol="full")
    resolve_model_source(MODEL)
    lm = load_model(MODEL, quant="4bit", lora=profile.lora, device=DEVICE)
    lm.model.eval()
    questions = [r.question for r in load_tofu("forget10").forget]
    new = 200
    with open(path, "a") as out:
        for b in (64, 128):
            with bf16_autocast():
                measure(f"generation 4bit+lora fast batch {b} at {new} new tokens",
                        lambda: generate(lm.model, lm.tokenizer, questions[:b], max_new_tokens=new, batch_size=b,
                                         engine="fast"),
                        b * new, out, new_tokens=new, batch_size=b, engine="fast")


def methods(path: str) -> None:
    """Every unlearning method as the GPU tier runs it (64 forget and 64 retain rows, the full protocol's schedule
    capped at 2 optimiser steps per phase, its full-scale settings), each call from fresh seeded adapters on the
    same 4-bit base (the re-seeding untimed): the cold call, then warm calls of the same work (2; IWAP 1, its
    influence pass is the slowest step). ``python perf/gpu_throughput.py OUT methods``"""
    from unlearn.benchmarks.base import method_settings, run_method
    from unlearn.benchmarks.tofu.benchmark import profile_for
    from unlearn.benchmarks.tofu.data import load_tofu
    from unlearn.methods import UnlearnContext, method_names
    from unlearn.models import load_model, resolve_model_source
    from unlearn.scoring import encode_qa

    cap_memory()
    profile = profile_for("qwen3-4b-random", dry_run=False, max_steps=2, precision="bf16" if CUDA else "fp32",
                          protocol="full")
    data = load_tofu("forget10")
    resolve_model_source(MODEL)
    lm = load_model(MODEL, quant="4bit", lora=profile.lora, device=DEVICE)
    tok = lm.tokenizer
    forget = [encode_qa(tok, r.question, r.answer) for r in data.forget[:64]]
    retain = [encode_qa(tok, r.question, r.answer) for r in data.retain_train[:64]]

    def fresh():
        fresh_adapters(lm, profile.lora)
        fresh_peak()

    with open(path, "a") as out:
        for method in [m for m in method_names() if m != "retrain"]:
            cfg, over = method_settings(method, profile.method_overrides, None)
            schedule = dataclasses.replace(profile.unlearn, progress=False, **over)
            times, tokens = [], 0
            try:
                for _ in range(1 + (1 if method == "iwap" else 2)):
                    fresh()
                    ctx = UnlearnContext(lm=lm, forget=forget, retain=retain, schedule=schedule,
                                         forget_questions=[r.question for r in data.forget[:64]],
                                         idk_answers=data.idk or ["I don't know."], target_lr=profile.target.lr)
                    t, (res, info) = timed(lambda: run_method(method, cfg, ctx))
                    lm.model = res.model
                    times.append(t)
                    tokens = info["cost"]["tokens"]
            except torch.OutOfMemoryError as err:
                rec = {"step": f"method {method}", "oom": str(err).splitlines()[0][:200]}
                fresh()
            else:
                med = statistics.median(times[1:])
                rec = {"step": f"method {method}", "cold_s": round(times[0], 3), "warm_s": [round(w, 3) for w in times[1:]],
                       "median_s": round(med, 3), "seconds": round(med, 3), "tokens": tokens,
                       "tokens_per_s": round(tokens / med, 1), "cold_tokens_per_s": round(tokens / times[0], 1),
                       "peak_gib": peak_gib(), "rows": len(forget), "batch_size": schedule.batch_size,
                       "grad_accum": schedule.grad_accum, "max_steps": schedule.max_steps}
            rec.update(model=MODEL, device=torch.cuda.get_device_name() if CUDA else "cpu", cap_gib=CAP_GIB)
            print(json.dumps(rec), flush=True)
            out.write(json.dumps(rec) + "\n")
            out.flush()


def main(path: str) -> None:
    from unlearn.benchmarks.base import TokenCounter, method_settings, run_method
    from unlearn.benchmarks.tofu.benchmark import profile_for
    from unlearn.benchmarks.tofu.data import load_tofu
    from unlearn.methods import UnlearnContext
    from unlearn.models import dequantised_copy, load_model, resolve_model_source
    from unlearn.scoring import encode_qa, generate
    from unlearn.train import finetuned_model_dir, nll_loss, train

    cap_memory()
    profile = profile_for("qwen3-4b-random", dry_run=False, max_steps=2, precision="bf16" if CUDA else "fp32",
                          protocol="full")
    data = load_tofu("forget10")
    t0 = time.perf_counter()
    resolve_model_source(MODEL)
    print(f"built {MODEL} in {time.perf_counter() - t0:.1f}s", flush=True)
    lm = load_model(MODEL, quant="4bit", lora=profile.lora, device=DEVICE)
    tok = lm.tokenizer
    full = [encode_qa(tok, r.question, r.answer) for r in data.full[:32]]
    out = open(path, "a")

    def counted(fn):
        def run():
            with TokenCounter(lm.model) as c:
                fn()
            run.tokens = c.tokens
        return run

    def fresh():
        fresh_adapters(lm, profile.lora)

    # --- training: the target recipe and the finetune method, the same NLL work
    fresh()
    sched = dataclasses.replace(profile.target, max_steps=2, warmup_steps=0, progress=False)
    tgt = counted(lambda: train(lm.model, tok.pad_token_id, sched, retain=full, loss_fn=nll_loss))
    tgt()
    measure("target fine-tuning", tgt, tgt.tokens, out, batch_size=sched.batch_size, optimiser_steps=2)
    fresh()
    cfg, over = method_settings("finetune", profile.method_overrides, None)
    schedule = dataclasses.replace(profile.unlearn, progress=False, **over)
    retain = [encode_qa(tok, r.question, r.answer) for r in data.retain_train[:64]]
    forget = [encode_qa(tok, r.question, r.answer) for r in data.forget[:64]]
    ctx = UnlearnContext(lm=lm, forget=forget, retain=retain, schedule=schedule,
                         forget_questions=[r.question for r in data.forget[:64]], idk_answers=data.idk or ["I don't know."],
                         target_lr=profile.target.lr)
    ft = counted(lambda: run_method("finetune", cfg, ctx))
    ft()
    measure("method finetune", ft, ft.tokens, out, batch_size=schedule.batch_size, grad_accum=schedule.grad_accum,
            max_steps=schedule.max_steps)

    del lm, ctx
    fresh_peak()

    # --- the `--quant 4bit` target path: QLoRA training, then the dequantised save
    with tempfile.TemporaryDirectory() as tmp:
        pairs = [(r.question, r.answer) for r in data.full[:32]]
        cfg_t = dataclasses.replace(profile.target, max_steps=2, warmup_steps=0, progress=False)
        fresh_peak()
        t, folder = timed(lambda: finetuned_model_dir(
            "target", MODEL, pairs, cfg_t, lambda: load_model(MODEL, quant="4bit", lora=profile.lora, device=DEVICE),
            lora=profile.lora, cache_root=Path(tmp), device=DEVICE, quant="4bit"))
        size = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file()) / 2**30
        rec = {"step": "qlora target training + save", "seconds": round(t, 2), "peak_gib": peak_gib(),
               "folder_gib": round(size, 3), "optimiser_steps": 2, "batch_size": cfg_t.batch_size, "model": MODEL,
               "cap_gib": CAP_GIB}
        print(json.dumps(rec), flush=True)
        out.write(json.dumps(rec) + "\n")
    # --- generation: 4-bit + LoRA, both engines, growing batches (a fresh load: the trained adapters do not matter)
    lm = load_model(MODEL, quant="4bit", lora=profile.lora, device=DEVICE)
    lm.model.eval()
    questions = [r.question for r in data.forget] * 2
    for engine, batches in (("fast", (16, 32, 64, 128)), ("hf", (16, 64))):
        for b in batches:
            with bf16_autocast():
                measure(f"generation 4bit+lora {engine} batch {b}",
                        lambda: generate(lm.model, tok, questions[:b], max_new_tokens=NEW_TOKENS, batch_size=b, engine=engine),
                        b * NEW_TOKENS, out, new_tokens=NEW_TOKENS, batch_size=b, engine=engine)
    plain = dequantised_copy(lm.model, dtype=torch.bfloat16 if CUDA else torch.float32)  # on the CPU
    del lm  # the 4-bit model leaves the GPU before the bf16 copy comes in (8 GB at 4B: close to the cap)
    fresh_peak()
    try:
        plain = plain.to(DEVICE).eval()
        for b in (16, 32, 64, 128):
            measure(f"generation dequantised bf16 batch {b}",
                    lambda: generate(plain, tok, questions[:b], max_new_tokens=NEW_TOKENS, batch_size=b, engine="fast"),
                    b * NEW_TOKENS, out, new_tokens=NEW_TOKENS, batch_size=b, engine="fast")
    except torch.OutOfMemoryError as err:
        print(json.dumps({"step": "dequantised bf16 copy", "oom": str(err).splitlines()[0][:200]}), flush=True)
    else:
        static_generation(plain, tok, questions, out)
    del plain

    out.close()


if __name__ == "__main__":
    if sys.argv[2:] == ["long"]:
        long_generation(sys.argv[1])
    elif sys.argv[2:] == ["methods"]:
        methods(sys.argv[1])
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "gpu_throughput.jsonl")
