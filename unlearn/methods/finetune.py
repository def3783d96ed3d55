"""Naive fine-tuning on the retain split only (a baseline that should not forget)."""

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import POSITIVE, UnlearnContext, procedure
from unlearn.train import nll_loss, train


@dataclass(frozen=True)
class FinetuneConfig:
    rules: ClassVar[dict] = {"epochs": POSITIVE, "lr": POSITIVE, "matched_epochs": POSITIVE}  # --set checks (unlearn/methods/overrides.py)
    # docs/methods.md: "continue training the target on retain: NLL(r); lr as target, epochs 5". Epochs are passes
    # over the retain split (not the forget split as for the unlearning methods); lr None = the target's.
    epochs: float = 5.0
    lr: float | None = None
    # A number E: the step budget of an unlearning method that runs E epochs over the forget split pairing every
    # forget batch with a retain batch, spent on retain alone: 2 * E * ceil(|forget| / batch_size) retain batches,
    # the same rows that method trains on (``epochs`` is then not used). None: ``epochs`` passes over retain.
    matched_epochs: float | None = None


def matched_steps(n_forget: int, batch_size: int, matched_epochs: float) -> int:
    """Retain batches of a control matched to an unlearning method's ``matched_epochs`` epochs over ``n_forget``
    forget rows (each step of that method trains on a forget batch and a retain batch: two batches' rows)."""
    return 2 * math.ceil(math.ceil(n_forget / batch_size) * matched_epochs)


@procedure("finetune", FinetuneConfig, "naive: keep training the target on retain, NLL(r), at the target's lr")
def finetune(ctx: UnlearnContext, cfg: FinetuneConfig):
    lr = cfg.lr if cfg.lr is not None else (ctx.target_lr if ctx.target_lr is not None else ctx.schedule.lr)
    if cfg.matched_epochs is None:
        sched = dataclasses.replace(ctx.schedule, lr=lr, epochs=cfg.epochs, desc="finetune")
    else:
        if not ctx.forget:
            raise ValueError("finetune: matched_epochs needs the forget split's size, and the forget split is empty")
        # optimiser steps of that many micro-batches, under the schedule's own cap (--max_steps) when it has one
        steps = math.ceil(matched_steps(len(ctx.forget), ctx.schedule.batch_size, cfg.matched_epochs)
                          / ctx.schedule.grad_accum)
        if ctx.schedule.max_steps is not None:
            steps = min(steps, ctx.schedule.max_steps)
        sched = dataclasses.replace(ctx.schedule, lr=lr, epochs=1e9, max_steps=steps, desc="finetune")
    train(ctx.lm.model, ctx.lm.tokenizer.pad_token_id, sched, retain=ctx.retain, loss_fn=nll_loss, probe=ctx.probe)
    return ctx.lm
