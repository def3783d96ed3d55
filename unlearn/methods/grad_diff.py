"""Gradient difference: ascend on forget, descend on retain (Liu et al. 2022, arXiv:2203.12817)."""

from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import NON_NEGATIVE, loss_method
from unlearn.methods.losses import grad_diff_loss
from unlearn.scoring import answer_logprobs
from unlearn.train import LossOutput


@dataclass(frozen=True)
class GradDiffConfig:
    tune_grid: ClassVar[dict] = {"lr": ["0.3x", "1x", "3x"], "epochs": ["2", "5"], "alpha": ["1", "5"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"alpha": NON_NEGATIVE}  # --set checks (unlearn/methods/overrides.py)
    alpha: float = 1.0  # weight of the retain NLL


@loss_method("grad_diff", GradDiffConfig, "gradient difference: -NLL(f) + alpha*NLL(r)")
def grad_diff(model, batch, cfg, ref) -> LossOutput:
    fs, fc = answer_logprobs(model, batch.forget)
    rs, rc = answer_logprobs(model, batch.retain)
    return LossOutput(grad_diff_loss(fs, fc, rs, rc, cfg.alpha))
