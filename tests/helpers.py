"""Small shared builders for the unit tests (tiny models, memorised fixtures)."""

from __future__ import annotations

import copy
import functools

import torch

from unlearn.benchmarks.tofu.data import synthetic_tofu
from unlearn.models import LoadedModel, load_model
from unlearn.scoring import encode_qa
from unlearn.train import TrainConfig, nll_loss, train


def tiny(lora=None, quant=None) -> LoadedModel:
    return load_model("tiny-qwen3", lora=lora, quant=quant)


@functools.lru_cache(maxsize=1)
def _memorised_state():
    """tiny-qwen3 fine-tuned until it knows 2 synthetic authors (forget = last one) plus background."""
    data = synthetic_tofu("forget10", n_authors=4, seed=1)
    lm = tiny()
    ex = [encode_qa(lm.tokenizer, r.question, r.answer) for r in data.full]
    train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=3e-3, epochs=12, batch_size=16, warmup_steps=3, progress=False),
          retain=ex, loss_fn=nll_loss)
    return copy.deepcopy(lm.model.state_dict()), data


def memorised(lora=None) -> tuple[LoadedModel, object]:
    state, data = _memorised_state()
    lm = tiny()
    lm.model.load_state_dict(state)
    if lora is not None:
        from unlearn.models import add_lora

        lm.model = add_lora(lm.model, lora)
        lm.lora = lora
    return lm, data


def examples(lm, rows):
    return [encode_qa(lm.tokenizer, r.question, r.answer) for r in rows]


def snapshot_params(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}
