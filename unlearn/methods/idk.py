"""IdkNLL: teach refusals on forget questions (Maini et al. 2024, TOFU, arXiv:2401.06121)."""

import random
from dataclasses import dataclass
from typing import ClassVar

from unlearn.methods import NON_NEGATIVE, UnlearnContext, procedure
from unlearn.scoring import encode_qa, mean_nll
from unlearn.train import LossOutput, train


@dataclass(frozen=True)
class IdkConfig:
    tune_grid: ClassVar[dict] = {"lr": ["0.3x", "1x", "3x"], "epochs": ["2", "5"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"alpha": NON_NEGATIVE}  # --set checks (unlearn/methods/overrides.py)
    alpha: float = 1.0  # weight of the retain NLL


def idk_examples(tokenizer, questions: list[str], refusals: list[str], seed: int):
    """Each forget question paired with a refusal drawn with a seeded generator."""
    if not refusals:
        raise ValueError("idk needs at least one refusal answer")
    rng = random.Random(seed)
    return [encode_qa(tokenizer, q, rng.choice(refusals)) for q in questions]


def idk_loss(model, batch, cfg) -> LossOutput:
    """NLL(forget question -> refusal) + alpha * NLL(r)."""
    refuse = mean_nll(model, batch.forget)
    return LossOutput(refuse + cfg.alpha * mean_nll(model, batch.retain), {"refusal_nll": refuse.item()})


@procedure("idk", IdkConfig, "IdkNLL: NLL of refusals on forget questions + NLL(r)")
def idk(ctx: UnlearnContext, cfg: IdkConfig):
    tok = ctx.lm.tokenizer
    forget = idk_examples(tok, ctx.forget_questions, ctx.idk_answers, ctx.schedule.seed)
    train(ctx.lm.model, tok.pad_token_id, ctx.schedule, forget=forget, retain=ctx.retain, probe=ctx.probe,
          loss_fn=lambda m, b: idk_loss(m, b, cfg))
    return ctx.lm
