"""Negative Preference Optimization (Zhang et al. 2024, arXiv:2404.05868)."""

from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import NON_NEGATIVE, POSITIVE, loss_method
from unlearn.methods.losses import npo_loss, token_mean_nll
from unlearn.scoring import answer_logprobs
from unlearn.train import LossOutput


@dataclass(frozen=True)
class NPOConfig:
    tune_grid: ClassVar[dict] = {"lr": ["0.3x", "1x", "3x"], "epochs": ["2", "5"], "beta": ["0.1", "0.5"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"beta": POSITIVE, "alpha": NON_NEGATIVE}  # --set checks (unlearn/methods/overrides.py)
    beta: float = 0.1  # inverse temperature of the preference loss
    alpha: float = 1.0  # weight of the retain NLL


def npo_forget_term(model, batch, beta, ref):
    """NPO's forget loss on a batch; the reference is the adapters-disabled model (or a frozen copy).

    The reference runs first, while no autograd graph is held, so its transient memory does not stack
    on top of the policy's saved activations.
    """
    with ref.model() as ref_net:
        logp_ref, _ = answer_logprobs(ref_net, batch)
    logp, _ = answer_logprobs(model, batch)
    return npo_loss(logp, logp_ref.detach(), beta)


@loss_method("npo", NPOConfig, "negative preference optimisation against pi_ref, + alpha*NLL(r)", needs_reference=True)
def npo(model, batch, cfg, ref) -> LossOutput:
    forget = npo_forget_term(model, batch.forget, cfg.beta, ref)
    rs, rc = answer_logprobs(model, batch.retain)
    retain = token_mean_nll(rs, rc)
    return LossOutput(forget + cfg.alpha * retain, {"forget": forget.item(), "retain": retain.item()})
