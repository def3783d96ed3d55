"""Retraining from the base model on the retain split only: the gold standard every ratio uses."""

from dataclasses import dataclass

from unlearn.methods import UnlearnContext, procedure


@dataclass(frozen=True)
class RetrainConfig:
    pass  # same recipe as the target; the benchmark supplies it through ctx.build_gold


@procedure("retrain", RetrainConfig, "gold: fine-tune the base model on retain only (same recipe as the target)")
def retrain(ctx: UnlearnContext, cfg: RetrainConfig):
    if ctx.build_gold is None:
        raise ValueError("retrain needs the benchmark's gold-model recipe (ctx.build_gold is None)")
    return ctx.build_gold()
