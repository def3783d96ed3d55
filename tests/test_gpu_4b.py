"""The research target on one 10 GB GPU (issue 15): a Qwen3-4B-shaped model (published config, random weights,
no download) loaded 4-bit NF4 + LoRA through ``load_model``, with the process capped at 10 GiB of GPU memory
(``torch.cuda.set_per_process_memory_fraction``): target fine-tuning steps, a few steps of every method, the
full protocol's scoring and generation batches, the relearning attack and export. Each step prints (and appends
to ``$UNLEARN_GPU_REPORT``, JSON lines) its peak ``torch.cuda.max_memory_allocated`` and tokens/s, and asserts
the peak is under the cap. ``perf/gpu_grid_estimate.py`` turns the report into the full TOFU grid's wall time.

Skipped without CUDA (CI has none); ``.ci/gpu`` runs it. ``UNLEARN_GPU_TIER_DEVICE=cpu`` with
``UNLEARN_GPU_TIER_MODEL=tiny-qwen3`` rehearses the same steps on a CPU (no memory figures), which is how the
script is checked before a device is spent on it. Metric values are meaningless here (random weights): only
memory and speed are measured.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

MODEL = os.environ.get("UNLEARN_GPU_TIER_MODEL", "qwen3-4b-random")
DEVICE = os.environ.get("UNLEARN_GPU_TIER_DEVICE", "cuda")
CAP_GIB = float(os.environ.get("UNLEARN_GPU_CAP_GIB", "10"))
REPORT = os.environ.get("UNLEARN_GPU_REPORT")
ROWS = 64  # forget and retain rows per method: 2 optimiser steps of the full protocol (16 x 2 accumulation)
STEPS = 2
METHODS = ["finetune", "grad_ascent", "grad_diff", "npo", "simnpo", "idk", "rmu", "dsu", "iwap", "trou"]

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(DEVICE.startswith("cuda") and not torch.cuda.is_available(),
                                 reason="needs a CUDA device (CI has none); .ci/gpu runs this tier on a GPU runner")]

CUDA = DEVICE.startswith("cuda")


def _record(step: str, seconds: float, tokens: int | None, **extra) -> dict:
    peak = torch.cuda.max_memory_allocated() / 2**30 if CUDA else None
    rec = {"step": step, "model": MODEL, "device": torch.cuda.get_device_name() if CUDA else "cpu",
           "seconds": round(seconds, 3), "tokens": tokens,
           "tokens_per_s": round(tokens / seconds, 1) if tokens and seconds > 0 else None,
           "peak_gib": round(peak, 3) if peak is not None else None,
           "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 3) if CUDA else None,
           "cap_gib": CAP_GIB, **extra}
    print(f"\n[gpu-tier] {json.dumps(rec)}")
    if REPORT:
        Path(REPORT).parent.mkdir(parents=True, exist_ok=True)
        with open(REPORT, "a") as f:
            f.write(json.dumps(rec) + "\n")
    if peak is not None:
        assert peak <= CAP_GIB, f"{step}: peak {peak:.2f} GiB over the {CAP_GIB} GiB cap"
    return rec


@contextmanager
def measured(step: str, model=None, **extra):
    """Time the block, count the tokens through ``model``'s embedding, and record the GPU peak of the block."""
    from unlearn.benchmarks.base import TokenCounter

    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    counter = TokenCounter(model) if model is not None else None
    box: dict = {}
    t0 = time.perf_counter()
    if counter is not None:
        with counter:
            yield box
    else:
        yield box
    if CUDA:
        torch.cuda.synchronize()
    tokens = box.pop("tokens", None) or (counter.tokens if counter is not None else None)
    box["record"] = _record(step, time.perf_counter() - t0, tokens, **extra, **box)


@pytest.fixture(scope="module")
def capped():
    if CUDA:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_GIB * 2**30 / total), 0)
    return CAP_GIB


@pytest.fixture(scope="module")
def profile():
    from unlearn.benchmarks.tofu.benchmark import profile_for

    # the full-scale recipes (any real model; not the tiny tier's), whatever MODEL is rehearsed with
    return profile_for("qwen3-4b-random", dry_run=False, max_steps=STEPS, precision="bf16" if CUDA else "fp32",
                       protocol="full")


@pytest.fixture(scope="module")
def rows():
    from unlearn.benchmarks.tofu.data import load_tofu

    data = load_tofu("forget10")  # the embedded copy: no network
    return data


@pytest.fixture(scope="module")
def lm(capped, profile):
    from unlearn.models import load_model, resolve_model_source

    t0 = time.perf_counter()
    resolve_model_source(MODEL)  # builds the random checkpoint once (cached); not part of the load figure
    built = time.perf_counter() - t0
    with measured("load 4-bit + LoRA", build_s=round(built, 1)):
        loaded = load_model(MODEL, quant="4bit", lora=profile.lora, device=DEVICE)
    return loaded


def fresh_adapters(lm, spec):
    """Start the next method from the target as loaded: drop every adapter (DSU's two, TROU's, ...) and IWAP's
    masks, then add the profile's LoRA adapters from their fixed seed, on the same 4-bit base (no reload)."""
    from unlearn.models import add_seeded_lora, is_peft

    model = lm.model
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
    for h in getattr(model, "_iwap_hooks", []):
        h.remove()
    base = model.unload() if is_peft(model) else model
    lm.model = add_seeded_lora(base, spec, quantised=True, device=DEVICE)
    return lm


def _examples(tok, rows):
    from unlearn.scoring import encode_qa

    return [encode_qa(tok, r.question, r.answer) for r in rows]


def test_target_fine_tuning_steps_fit_under_the_cap(lm, profile, rows):
    """QLoRA target fine-tuning at the full recipe's batch size (16), a few steps."""
    from unlearn.train import nll_loss, train

    fresh_adapters(lm, profile.lora)
    ex = _examples(lm.tokenizer, rows.full[:ROWS])
    sched = dataclasses.replace(profile.target, max_steps=STEPS + 1, warmup_steps=0, progress=False)
    train(lm.model, lm.tokenizer.pad_token_id, dataclasses.replace(sched, max_steps=1), retain=ex,
          loss_fn=nll_loss)  # warm-up (kernel selection, allocator), not measured
    with measured("target fine-tuning", lm.model, batch_size=sched.batch_size, optimiser_steps=STEPS + 1):
        history = train(lm.model, lm.tokenizer.pad_token_id, sched, retain=ex, loss_fn=nll_loss)
    assert len(history) == STEPS + 1


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_a_few_steps_under_the_cap(lm, profile, rows, method):
    """Each method at the full protocol's schedule (batch 16, accumulation 2), STEPS optimiser steps per phase,
    its tier settings for full-scale models."""
    from unlearn.benchmarks.base import method_settings, run_method
    from unlearn.methods import UnlearnContext

    fresh_adapters(lm, profile.lora)
    cfg, sched_over = method_settings(method, profile.method_overrides, None)
    schedule = dataclasses.replace(profile.unlearn, progress=False, **sched_over)
    tok = lm.tokenizer
    ctx = UnlearnContext(lm=lm, forget=_examples(tok, rows.forget[:ROWS]), retain=_examples(tok, rows.retain_train[:ROWS]),
                         schedule=schedule, forget_questions=[r.question for r in rows.forget[:ROWS]],
                         idk_answers=rows.idk or ["I don't know."], target_lr=profile.target.lr)
    with measured(f"method {method}", lm.model, batch_size=schedule.batch_size, grad_accum=schedule.grad_accum,
                  max_steps=schedule.max_steps) as box:
        oom = None
        try:
            out, info = run_method(method, cfg, ctx)
        except torch.OutOfMemoryError as err:  # fail without keeping the failed run's tensors (its frames) alive
            oom = str(err).splitlines()[0]
        if oom is not None:
            fresh_adapters(lm, profile.lora)
            pytest.fail(f"{method}: out of memory under the {CAP_GIB} GiB cap: {oom}")
        box["tokens"] = info["cost"]["tokens"]
    trained = [p.detach().float().sum() for p in out.model.parameters() if p.requires_grad]
    assert not trained or torch.isfinite(torch.stack(trained)).all()
    lm.model = out.model


@pytest.mark.parametrize("batch_size", [16, 32])  # the full protocol; open-unlearning's compatibility mode
def test_evaluation_scoring_and_generation_fit_under_the_cap(lm, profile, rows, batch_size):
    """The full protocol's work at its batch sizes: answers scored with per-token statistics (Min-K%++), and
    greedy generation of 200 new tokens (a random model never stops early: the worst case)."""
    from unlearn.scoring import generate, score_examples

    from unlearn.scoring import encode_qa

    model, tok = lm.model.eval(), lm.tokenizer
    pairs = [(r.question, a) for r in rows.forget[:batch_size * 2] for a in (r.answer, r.paraphrased_answer)]
    ex = [encode_qa(tok, q, a) for q, a in pairs]
    with measured(f"scoring batch {batch_size}", model, rows=len(ex)):  # scores: no autocast (the protocol's fp32)
        score_examples(model, ex, tok.pad_token_id, batch_size=batch_size, token_stats=True)
    n_new = profile.protocol.max_new_tokens
    with torch.autocast(DEVICE.split(":")[0], dtype=torch.bfloat16, enabled=CUDA and profile.protocol.bf16):
        with measured(f"generation batch {batch_size}", model, rows=batch_size, max_new_tokens=n_new) as box:
            gens = generate(model, tok, [r.question for r in rows.forget[:batch_size]], max_new_tokens=n_new,
                            batch_size=batch_size)
            box["tokens"] = batch_size * n_new  # new tokens (the prompt's pass is a small share)
    assert len(gens) == batch_size
    model.train()


def test_relearning_attack_fits_under_the_cap(lm, profile, rows):
    """The robustness attack: a LoRA fine-tune of a copy of the unlearned model on forget rows (batch 4)."""
    from unlearn.benchmarks.tofu.robustness import attack

    with measured("relearning attack", steps=profile.robustness.steps, batch_size=profile.robustness.batch_size) as box:
        attacked = attack(lm.model, lm.tokenizer, rows.forget[:8], profile.robustness, lora=profile.lora,
                          mixed_precision="bf16" if CUDA else "no")
    assert attacked is not lm.model
    del attacked


def test_export_of_the_qlora_model_fits_under_the_cap(lm, tmp_path):
    """``unlearn export`` of a QLoRA model: NF4 dequantised layer by layer, adapters merged, written plain."""
    from unlearn.export import save_plain

    with measured("export (dequantise + merge + save)") as box:
        save_plain(lm, tmp_path / "plain")
        box["folder_gib"] = round(sum(f.stat().st_size for f in (tmp_path / "plain").iterdir()) / 2**30, 3)
    assert (tmp_path / "plain" / "config.json").is_file()
