"""The tiers and their models, named once.

- **tiny**: ``tiny-qwen3``, a ~2M-parameter Qwen3-shaped model trained from scratch on each benchmark's
  synthetic data, in float32 under the numerics pins: the tier of ``pytest evals`` and the snapshots.
- **reduced**: a real model (``smollm2-135m`` for the dry run) on CPU-sized slices of the real data.
- **full**: the published protocols on any real model (the research target: Qwen3-4B with QLoRA).

Each benchmark's recipes per tier are its ``make_profile`` (``profile_for``, ``muse_profile``, ``wmdp_profile``);
a tier's tuned method settings are ``unlearn/data/tuned/<tier file>.json`` (chosen settings only; the trials
behind them are in ``perf/tuning/``)."""

from __future__ import annotations

TINY_MODEL = "tiny-qwen3"
DRY_RUN_MODEL = "smollm2-135m"


def is_tiny(model: str | None) -> bool:
    """The tiny tier: trained from scratch on synthetic data, float32 unless bf16 is asked for, pinned numerics."""
    return model == TINY_MODEL


def default_model(dry_run: bool) -> str:
    """The model a command runs when none is named: the dry run's real model, else the tiny tier's."""
    return DRY_RUN_MODEL if dry_run else TINY_MODEL


def tier_of(model: str, protocol: str | None) -> str:
    """``tiny``, ``reduced`` or ``full`` for ``model`` under ``protocol`` (None: full)."""
    return "tiny" if is_tiny(model) else (protocol or "full")
