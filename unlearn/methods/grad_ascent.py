"""Gradient ascent on the forget split (Jang et al. 2023, "Knowledge Unlearning", arXiv:2210.01504)."""

from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import loss_method
from unlearn.methods.losses import grad_ascent_loss
from unlearn.scoring import answer_logprobs
from unlearn.train import LossOutput


@dataclass(frozen=True)
class GradAscentConfig:
    # no hyperparameters beyond the shared schedule
    tune_grid: ClassVar[dict] = {"lr": ["0.3x", "1x", "3x"], "epochs": ["2", "5"]}  # `unlearn tune`'s grid


@loss_method("grad_ascent", GradAscentConfig, "gradient ascent on forget: -NLL(f)")
def grad_ascent(model, batch, cfg, ref) -> LossOutput:
    sums, counts = answer_logprobs(model, batch.forget)
    return LossOutput(grad_ascent_loss(sums, counts))
