"""An unlearning method that lives in another package: the whole of it is this file plus one entry point,
``[project.entry-points."unlearn.methods"] example_scaled_ga = "unlearn_example_method"`` in its pyproject.
tests/test_method_plugins.py installs it as an entry point and checks the suite picks it up."""

from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import POSITIVE, loss_method
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
