"""Greedy generation: finished rows leave the batch (``greedy_batch``) and the KV cache is written in place
(``reserved_cache``), transformers' ``generate`` as the reference engine, and the stop rules."""

from __future__ import annotations

import functools
import inspect

import torch
from tqdm.auto import tqdm

from unlearn.scoring.encoding import attention_mask, chat_prompt_ids, clean_up_tokenization, format_prompt, open_unlearning_prompt, pad_sequences
from unlearn.scoring.answers import cache_argument, length_sorted_batches
from unlearn.scoring.bf16_weights import bf16_weights_under_autocast


# finished rows leave a decoding batch once they are this fraction of it: until then they decode on (their tokens
# dropped), since each compaction copies every layer's keys and values; 1/8 decodes SmolLM2's 128-row float32
# batches ~8% faster than compacting at every finished row (docs/lab/measurements.md)
COMPACT_FRACTION = 0.125
ENGINE = "fast"  # greedy generation: ``fast`` (greedy_batch) or ``hf`` (transformers' generate); see generate_ids


def question_prompts(tokenizer, questions: list[str], style: str = "tofu") -> list[list[int]]:
    """The token ids ``generate`` continues for ``questions`` under ``style``'s conventions."""
    if style == "open-unlearning":
        return [open_unlearning_prompt(tokenizer, q) for q in questions]
    return [chat_prompt_ids(tokenizer, format_prompt(tokenizer, q)) for q in questions]


def finish_text(text: str, style: str = "tofu") -> str:
    """A decoded continuation as ``generate`` returns it under ``style``'s conventions."""
    return (clean_up_tokenization(text) if style == "open-unlearning" else text).strip()


@torch.no_grad()
def generate(model, tokenizer, questions: list[str], *, max_new_tokens: int = 200, batch_size: int = 16,
             device: str | torch.device | None = None, progress: bool = False, style: str = "tofu",
             engine: str | None = None) -> list[str]:
    """Greedy answers to ``questions``, batched with left padding, at most ``max_new_tokens`` each (``engine``:
    see ``generate_ids``).

    ``open-unlearning`` style reproduces that tool's generation: batches in the given order (not sorted by
    length), every pad-id token masked out of attention (so with pad = EOS the template's EOS tokens too;
    ``generate`` then derives position ids from that mask), decoded with ``clean_up_tokenization_spaces``.
    """
    ou = style == "open-unlearning"
    texts = generate_ids(model, tokenizer, question_prompts(tokenizer, questions, style), max_new_tokens=max_new_tokens,
                         batch_size=batch_size, device=device, progress=progress, in_order=ou, hide_pad=ou, engine=engine)
    return [finish_text(t, style) for t in texts]


def _settled_criteria(tokenizer, width: int, settled: list):
    """A stopping criterion that marks row r done once ``settled[r]`` (None: never) holds for its continuation."""
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Settled(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = [f is not None and f(tokenizer.decode(row[width:], skip_special_tokens=True))
                    for f, row in zip(settled, input_ids)]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Settled()])


@functools.cache
def _reserved_layer():
    """transformers' ``DynamicLayer`` with its keys and values in buffers reserved for the whole continuation
    (prompt + ``max_new_tokens``: the instance's ``capacity``), written in place; ``keys``/``values`` are views of
    the filled prefix, so attention sees the same shapes and numbers as with the default layer, which
    concatenates a new tensor for every token. (Built on first use: transformers is imported only then.)"""
    from transformers.cache_utils import DynamicLayer

    class ReservedLayer(DynamicLayer):
        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = capacity

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n, k = self.get_seq_length(), key_states.shape[-2]
            if n == 0 or n + k > self._kbuf.shape[-2]:  # first call, or past the reserve: a new buffer (doubled)
                size = max(self.capacity, n + k) if n == 0 else max(2 * self._kbuf.shape[-2], n + k)
                kbuf = key_states.new_empty(*key_states.shape[:-2], size, key_states.shape[-1])
                vbuf = value_states.new_empty(*value_states.shape[:-2], size, value_states.shape[-1])
                if n:
                    kbuf[..., :n, :], vbuf[..., :n, :] = self.keys, self.values
                self._kbuf, self._vbuf = kbuf, vbuf
            self._kbuf[..., n:n + k, :] = key_states
            self._vbuf[..., n:n + k, :] = value_states
            self.keys, self.values = self._kbuf[..., :n + k, :], self._vbuf[..., :n + k, :]
            return self.keys, self.values

        def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
            """Rows ``beam_idx`` of the filled prefix into fresh buffers of the same reserve (finished rows leave)."""
            n = self.get_seq_length()
            if n == 0:
                return
            idx = beam_idx.to(self._kbuf.device)
            kbuf = self._kbuf.new_empty(len(idx), *self._kbuf.shape[1:])
            vbuf = self._vbuf.new_empty(len(idx), *self._vbuf.shape[1:])
            kbuf[..., :n, :], vbuf[..., :n, :] = self.keys.index_select(0, idx), self.values.index_select(0, idx)
            self._kbuf, self._vbuf = kbuf, vbuf
            self.keys, self.values = kbuf[..., :n, :], vbuf[..., :n, :]

    return ReservedLayer


def reserved_cache(model, capacity: int):
    """A transformers ``DynamicCache`` for ``model`` whose layers write into buffers of ``capacity`` positions
    (``_reserved_layer``), or None where a layer is not a plain ``DynamicLayer`` (sliding windows and the like keep
    transformers' own cache)."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    cache = DynamicCache(config=model.config)
    if not cache.layers or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return None
    cache.layers = [_reserved_layer()(capacity) for _ in cache.layers]
    return cache


def greedy_batch(model, ids: torch.Tensor, mask: torch.Tensor, *, max_new_tokens: int, eos_id: int,
                 settled: list | None = None, decode=None) -> list[list[int]]:
    """Greedy continuation of one left-padded batch, token for token what ``model.generate(do_sample=False)``
    computes for each row, but finished rows (EOS, max_new_tokens, or ``settled[r](decode(tokens))``) leave the
    batch once they are :data:`COMPACT_FRACTION` of it, so later steps run mostly the rows still decoding (a
    finished row still in the batch decodes on, its tokens dropped). Returns each row's new tokens up to and
    including its EOS.

    Same computation as HF's greedy loop: position ids from the attention mask (cumsum - 1, 0 on padding), one
    KV cache (``reserved_cache``: written in place, the same keys and values), the LM head on the last position
    only, argmax of the float32 logits. A row's logits do not depend
    on the other rows of the batch (attention is per row), so keeping or dropping finished rows changes no row's
    tokens up to the rounding of batched matrix products (tests hold the outputs equal to ``generate``)."""
    n = ids.shape[0]
    out: list[list[int]] = [[] for _ in range(n)]
    alive = list(range(n))  # batch row -> prompt row
    done = [False] * n  # batch rows finished but still in the batch (until the next compaction)
    positions = (mask.long().cumsum(-1) - 1).masked_fill(mask == 0, 0)
    # a PEFT wrapper passes keyword arguments through: what the wrapped model takes decides
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    kwargs = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(inner.forward).parameters else {}
    cache_arg = cache_argument(inner)
    reserved = reserved_cache(inner, ids.shape[1] + max_new_tokens)
    step_out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs,
                     **({cache_arg: reserved} if reserved is not None else {}))
    cache = getattr(step_out, "cache", None) or step_out.past_key_values
    last_pos = positions[:, -1:]
    for t in range(max_new_tokens):
        nxt = step_out.logits[:, -1].float().argmax(-1)
        tokens = nxt.tolist()
        for row, tok_id in enumerate(tokens):
            if done[row]:
                continue
            r = alive[row]
            out[r].append(tok_id)
            finished = tok_id == eos_id or t + 1 == max_new_tokens
            if not finished and settled is not None and settled[r] is not None:
                finished = bool(settled[r](decode(out[r])))
            done[row] = finished
        n_done = sum(done)
        if n_done == len(tokens):
            break
        if n_done and n_done >= COMPACT_FRACTION * len(tokens):
            keep = [row for row in range(len(tokens)) if not done[row]]
            sel = torch.tensor(keep, device=ids.device)
            alive, done = [alive[row] for row in keep], [False] * len(keep)
            nxt, mask, last_pos = nxt[sel], mask[sel], last_pos[sel]
            cache.reorder_cache(sel)
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], 1)
        last_pos = last_pos + 1
        step_out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last_pos, use_cache=True,
                         **{cache_arg: cache}, **kwargs)
    return out


def batch_order(prompts: list[list[int]], batch_size: int, in_order: bool) -> list[list[int]]:
    """The prompts' positions in generation batches: consecutive (``in_order``) or length-sorted."""
    if in_order:
        return [list(range(i, min(i + batch_size, len(prompts)))) for i in range(0, len(prompts), batch_size)]
    return length_sorted_batches(len(prompts), [len(p) for p in prompts], batch_size)


def decode_batch(model, tokenizer, prompts: list[list[int]], idx: list[int], *, max_new_tokens: int, device,
                 hide_pad: bool = False, settled: list | None = None, engine: str = "fast") -> list[str]:
    """Greedy continuations of ``prompts[i]`` for ``i`` in ``idx`` as one left-padded batch, decoded without
    special tokens (``generate_ids``'s batch; the caller sets no_grad, eval mode and precision)."""
    decode = lambda toks: tokenizer.decode(toks, skip_special_tokens=True)  # noqa: E731
    per_row = settled or [None] * len(idx)
    ids, mask = pad_sequences([prompts[i] for i in idx], tokenizer.pad_token_id, left=True, device=device)
    mask = attention_mask(ids, mask, tokenizer.pad_token_id if hide_pad else None)
    if engine == "fast":
        rows = greedy_batch(model, ids, mask, max_new_tokens=max_new_tokens, eos_id=tokenizer.eos_token_id,
                            settled=per_row, decode=decode)
        return [decode(r) for r in rows]
    width = ids.shape[1]
    stops = None if not any(per_row) else _settled_criteria(tokenizer, width, per_row)
    out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                         max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id, use_cache=True,
                         eos_token_id=tokenizer.eos_token_id, temperature=None, top_p=None, top_k=None,
                         stopping_criteria=stops)
    return [decode(out[row, width:]) for row in range(len(idx))]


@torch.no_grad()
def generate_ids(model, tokenizer, prompts: list[list[int]], *, max_new_tokens: int, batch_size: int = 16,
                 device: str | torch.device | None = None, progress: bool = False, in_order: bool = False,
                 hide_pad: bool = False, settled=None, engine: str | None = None) -> list[str]:
    """Greedy continuations of tokenized ``prompts`` (left-padded batches, length-sorted unless ``in_order``),
    decoded without special tokens and not stripped. ``hide_pad``: every pad-id token masked out of attention.
    ``settled(text) -> bool`` (or a list of them, one per prompt, None for a row that never settles): a row stops
    once its decoded continuation is settled, i.e. once no further tokens could change what the caller keeps of it
    (MUSE's KnowMem answer, cut at a stop string); the kept part is then the same as with all ``max_new_tokens``
    generated. ``engine``: ``fast`` (``greedy_batch``: finished rows leave the batch) or ``hf`` (transformers'
    ``generate``, every row computed until the batch ends); both give the same texts. None: ``ENGINE``."""
    engine = engine or ENGINE
    if engine not in ("fast", "hf"):
        raise ValueError(f"unknown generation engine {engine!r}; valid: fast, hf")
    device = device or next(model.parameters()).device
    outputs: list[str] = [""] * len(prompts)
    per_row = settled if isinstance(settled, list) else [settled] * len(prompts)
    was_training = model.training
    model.eval()
    with bf16_weights_under_autocast(model):  # bf16 generation: the weights cast once, not per token
        for idx in tqdm(batch_order(prompts, batch_size, in_order), desc="generate", disable=not progress, leave=False):
            texts = decode_batch(model, tokenizer, prompts, idx, max_new_tokens=max_new_tokens, device=device,
                                 hide_pad=hide_pad, settled=[per_row[i] for i in idx], engine=engine)
            for i, text in zip(idx, texts):
                outputs[i] = text
    model.train(was_training)
    return outputs
