"""SimNPO: reference-free, length-normalised NPO (Fan et al. 2024, arXiv:2410.07163)."""

from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import NON_NEGATIVE, POSITIVE, loss_method
from unlearn.methods.losses import simnpo_loss, token_mean_nll
from unlearn.scoring import answer_logprobs
from unlearn.train import LossOutput


@dataclass(frozen=True)
class SimNPOConfig:
    tune_grid: ClassVar[dict] = {"lr": ["0.3x", "1x", "3x"], "epochs": ["2", "5"], "beta": ["2.5", "4.5"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"beta": POSITIVE, "alpha": NON_NEGATIVE}  # --set checks (unlearn/methods/overrides.py)
    beta: float = 4.5  # inverse temperature
    gamma: float = 0.0  # reward margin
    alpha: float = 1.0  # weight of the retain NLL


@loss_method("simnpo", SimNPOConfig, "SimNPO: length-normalised, reference-free NPO, + alpha*NLL(r)")
def simnpo(model, batch, cfg, ref) -> LossOutput:
    fs, fc = answer_logprobs(model, batch.forget)
    rs, rc = answer_logprobs(model, batch.retain)
    forget = simnpo_loss(fs, fc, cfg.beta, cfg.gamma)
    return LossOutput(forget + cfg.alpha * token_mean_nll(rs, rc), {"forget": forget.item()})
