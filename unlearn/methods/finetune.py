"""Naive fine-tuning on the retain split only (a baseline that should not forget)."""

from dataclasses import dataclass

from unlearn.methods import loss_method
from unlearn.scoring import mean_nll
from unlearn.train import LossOutput


@dataclass(frozen=True)
class FinetuneConfig:
    pass  # lr and epochs come from the shared schedule (METHODS.md: lr as target, 5 epochs)


@loss_method("finetune", FinetuneConfig, "naive: keep training the target on retain, NLL(r)")
def finetune_loss(model, batch, cfg, ref) -> LossOutput:
    return LossOutput(mean_nll(model, batch.retain))
