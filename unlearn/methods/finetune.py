"""Naive fine-tuning on the retain split only (a baseline that should not forget)."""

import dataclasses
from dataclasses import dataclass

from unlearn.methods import UnlearnContext, procedure
from unlearn.train import nll_loss, train


@dataclass(frozen=True)
class FinetuneConfig:
    # docs/methods.md: "continue training the target on retain: NLL(r); lr as target, epochs 5". Epochs are passes
    # over the retain split (not the forget split as for the unlearning methods); lr None = the target's.
    epochs: float = 5.0
    lr: float | None = None


@procedure("finetune", FinetuneConfig, "naive: keep training the target on retain, NLL(r), at the target's lr")
def finetune(ctx: UnlearnContext, cfg: FinetuneConfig):
    lr = cfg.lr if cfg.lr is not None else (ctx.target_lr if ctx.target_lr is not None else ctx.schedule.lr)
    sched = dataclasses.replace(ctx.schedule, lr=lr, epochs=cfg.epochs, desc="finetune")
    train(ctx.lm.model, ctx.lm.tokenizer.pad_token_id, sched, retain=ctx.retain, loss_fn=nll_loss, probe=ctx.probe)
    return ctx.lm
