"""Unlearning methods that live in another package: the whole of it is this file plus one entry point,
``[project.entry-points."unlearn.methods"] example = "unlearn_example_method"`` in its pyproject.toml (this folder is
the complete example repository: README.md says how it gates its methods in its own CI).

- ``example_scaled_ga``: gradient ascent on the forget answers, scaled by ``scale``.
- ``example_npo``: negative preference optimisation against the frozen start plus the retain NLL, written from
  the package's public pieces (``npo_loss``, ``answer_logprobs``).
- ``example_noop``: a planted bug, the target returned unchanged: the gate must fail its forget-efficacy row.

tests/test_method_plugins.py checks the suite picks them up; evals/test_gate_plugin.py installs this folder in a
fresh environment and runs the gate on it."""

from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import NON_NEGATIVE, POSITIVE, loss_method, procedure
from unlearn.methods.losses import npo_loss, token_mean_nll
from unlearn.scoring import answer_logprobs
from unlearn.train import LossOutput


@dataclass(frozen=True)
class ScaledAscentConfig:
    scale: float = 0.5  # the forget NLL's weight
    tune_grid: ClassVar[dict] = {"lr": ["1x", "3x"], "scale": ["0.5", "1"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"scale": POSITIVE}  # what `--set example_scaled_ga.scale=...` may be


@loss_method("example_scaled_ga", ScaledAscentConfig, "example plugin: gradient ascent scaled by `scale`")
def example_scaled_ga(model, batch, cfg, ref) -> LossOutput:
    sums, counts = answer_logprobs(model, batch.forget)
    return LossOutput(cfg.scale * (sums / counts).mean())  # + log p = - NLL: minimising it raises the forget NLL


@dataclass(frozen=True)
class ExampleNPOConfig:
    beta: float = 0.5  # inverse temperature of the preference loss
    alpha: float = 1.0  # weight of the retain NLL
    tune_grid: ClassVar[dict] = {"lr": ["1x", "3x"], "beta": ["0.1", "0.5"]}
    rules: ClassVar[dict] = {"beta": POSITIVE, "alpha": NON_NEGATIVE}


@loss_method("example_npo", ExampleNPOConfig, "example plugin: NPO against the frozen start + alpha * retain NLL",
             needs_reference=True)
def example_npo(model, batch, cfg, ref) -> LossOutput:
    with ref.model() as ref_net:  # the reference first, while no autograd graph is held
        logp_ref, _ = answer_logprobs(ref_net, batch.forget)
    logp, _ = answer_logprobs(model, batch.forget)
    forget = npo_loss(logp, logp_ref.detach(), cfg.beta)
    rs, rc = answer_logprobs(model, batch.retain)
    retain = token_mean_nll(rs, rc)
    return LossOutput(forget + cfg.alpha * retain, {"forget": forget.item(), "retain": retain.item()})


@dataclass(frozen=True)
class NoopConfig:
    pass


@procedure("example_noop", NoopConfig, "example plugin, a planted bug: returns the target unchanged")
def example_noop(ctx, cfg):
    return ctx.lm
