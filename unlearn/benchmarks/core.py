"""The shared core of every benchmark: the registry, the method-running step of a cell (settings, token
count, dynamics probe, cost), the summary columns and small helpers. A benchmark module (``tofu.py``,
``muse.py``) adds its data, target/gold recipes, evaluator and cell logic, and registers itself in
``BENCHMARKS``."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import resource
import time
from pathlib import Path

import numpy as np
import torch

from unlearn.methods import UnlearnContext, get_method, make_config, schedule_overrides
from unlearn.models import LoadedModel
from unlearn.registry import Registry

BENCHMARKS: Registry = Registry("benchmark")
DATA_CHOICES = ("auto", "real", "synthetic")  # auto: the model profile's (real data; synthetic for tiny-qwen3)
CELL_CODE_VERSION = 3  # bump when evaluation or metric code changes: invalidates cached target/gold evaluations
TUNED_DIR = Path(__file__).resolve().parent.parent / "data" / "tuned"


# Method settings of every full-scale profile (real models, published protocols): IWAP's influence pass keeps the
# whole forward graph for its gradient (about 7 MB per token on Qwen3-4B's shape), so it runs one row at a time
# (measured under a 10 GiB cap: 16 and 4 rows ran out, 1 row peaked at 5.3 GiB, the same scores up to rounding;
# docs/guide.md, GPU tier)
FULL_SCALE_SETTINGS = {"iwap": {"rows_per_pass": "1"}}


def tier_settings(tier: str, base: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """A tier's method settings: ``base`` under the choices of its committed `unlearn tune` run
    (unlearn/data/tuned/<tier>.json); just ``base`` when the tier has not been tuned."""
    from unlearn.tune import tuned_overrides

    out = {m: dict(v) for m, v in (base or {}).items()}
    path = TUNED_DIR / f"{tier}.json"
    if tier.replace("-", "").replace(".", "").replace("_", "").isalnum() and path.is_file():  # presets, not paths
        for m, fields in tuned_overrides(path).items():
            out.setdefault(m, {}).update(fields)
    return out


def method_settings(method: str, profile_overrides: dict, overrides: dict | None):
    """(method config, shared-schedule changes) of ``method``: the profile's settings, then the caller's
    (``--set``) over them."""
    merged = {m: dict(v) for m, v in profile_overrides.items()}
    for m, fields in (overrides or {}).items():
        merged.setdefault(m, {}).update(fields)
    return make_config(method, merged), schedule_overrides(method, merged)


def run_method(method: str, cfg, ctx: UnlearnContext, probe_factory=None, seed: int = 0) -> tuple[LoadedModel, dict]:
    """Unlearn with ``method`` on ``ctx``; returns the model (LoRA merged for evaluation) and what the run
    cost and showed: {"cost": {"unlearn_s", "tokens"}, "dynamics": probe points or None, "method_stats"}.
    ``probe_factory(lm, counter) -> Probe | None`` builds the benchmark's dynamics probe."""
    torch.manual_seed(seed)
    t0, counter = time.time(), TokenCounter(ctx.lm.model)
    ctx.probe = probe_factory(ctx.lm, counter) if probe_factory is not None else None
    with counter:
        lm = get_method(method).run(ctx, cfg)
    info = {"cost": {"unlearn_s": round(time.time() - t0, 2), "tokens": counter.tokens},
            "dynamics": ctx.probe.points if ctx.probe is not None else None,
            "method_stats": getattr(lm.model, "_unlearn_stats", None)}
    return merged_for_evaluation(lm), info


def autocast(model, enabled: bool):
    """bf16 autocast on the model's device (a no-op context when not ``enabled``)."""
    return torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16, enabled=enabled)


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def first_n(rows: list, n: int | None) -> list:
    """The first ``n`` rows (all when ``n`` is None): a protocol's row cap."""
    return rows if n is None else rows[:n]


def round_sig(x: float | None, sig: int = 4) -> float | None:
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{sig}g}")


def schedule_record(schedule, sched: dict) -> dict:
    """The shared unlearning schedule a cell ran with (the profile's, with the method's changes)."""
    return {k: v for k, v in dataclasses.asdict(dataclasses.replace(schedule, **sched)).items()
            if k not in ("progress", "desc")}


class TokenCounter:
    """Tokens that pass through a model's input embedding while active: the unlearning run's work, counted
    the same way for every method (forward passes of the model being unlearned; a separate frozen copy's
    passes are not counted). Deterministic, unlike wall time, so tuning can break ties on it."""

    def __init__(self, model):
        self.embedding, self.tokens, self._handle, self.paused = model.get_input_embeddings(), 0, None, False

    def _count(self, module, args):
        if not self.paused:
            self.tokens += int(args[0].numel())

    def __enter__(self):
        self._handle = self.embedding.register_forward_pre_hook(self._count)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def merged_for_evaluation(lm: LoadedModel) -> LoadedModel:
    """Fold LoRA adapters into full-precision weights before scoring: the same function, evaluated
    without the adapter overhead. Quantised bases and IWAP's output masks (hooks on the adapter
    wrappers) are left as they are."""
    from unlearn.models import is_peft, is_quantised

    model = lm.model
    if is_peft(model) and not is_quantised(model) and not hasattr(model, "_iwap_hooks"):
        lm.model = model.merge_and_unload()
    return lm


def text_membership_scores(model, tok, texts: list[str], max_tokens: int | None, batch_size: int, k: float,
                           progress: bool = False, desc: str = "mia") -> dict[str, np.ndarray]:
    """Every MIA score (LOSS, ZLib, Min-K%, Min-K%++; higher = member) of plain texts, each cut to its first
    ``max_tokens`` tokens (None: all), no EOS appended."""
    from unlearn.metrics import mia
    from unlearn.scoring import encode_text, score_examples

    examples = [encode_text(tok, t, max_tokens, eos=False) for t in texts]
    res = score_examples(model, examples, tok.pad_token_id, batch_size=batch_size, token_stats=True,
                         share_prompts=False, progress=progress, desc=desc)
    return {"loss": mia.loss_score(res.mean_nll), "zlib": mia.zlib_score(res.mean_nll, texts),
            "min_k": mia.min_k_score(res.token_logprobs, k),
            "min_k_plus_plus": mia.min_k_plus_plus_score(res.token_logprobs, res.token_mu, res.token_sigma, k)}


def fold_into_weights(lm: LoadedModel):
    """The unlearned model as plain full-precision weights: LoRA adapters merged, IWAP's pruned atoms zeroed
    in the weights (its output-mask hooks removed). A 4-bit (QLoRA) model becomes a dequantised copy in its
    compute dtype on the CPU (``unlearn.models.dequantised_copy``); the 4-bit model itself is left as it was."""
    from unlearn.methods.iwap import merge_masks
    from unlearn.models import dequantised_copy, is_peft, is_quantised

    model = lm.model
    pruned = getattr(model, "_iwap_pruned", None)
    hooks = getattr(model, "_iwap_hooks", [])
    if is_quantised(model):
        model, hooks = dequantised_copy(model), []  # the hooks stay on the 4-bit model; the copy has none
    elif is_peft(model):
        model = model.merge_and_unload()
    if pruned is not None:
        for h in hooks:
            h.remove()
        with torch.no_grad():
            merge_masks(model, pruned["mlp"], pruned["heads"])
    return model


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def summary_columns(m_target: float, m_gold: float, m_model: float, u_target: float, u_model: float, mia_auc: float) -> dict:
    """Forget efficacy = clip((m_t - m)/(m_t - m_g), 0, 1); retain performance = u/u_t; MIA AUC as is."""
    gap = m_target - m_gold
    efficacy = float(np.clip((m_target - m_model) / gap, 0, 1)) if gap > 0 else float("nan")
    retain = u_model / u_target if u_target > 0 else float("nan")
    return {"forget_efficacy": efficacy, "retain_performance": retain, "mia_auc": mia_auc}
