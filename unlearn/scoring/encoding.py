"""Turning questions, answers and texts into token ids: the prompt (a chat template or TOFU's plain one, or
open-unlearning's conventions), the scored answer span, padding and batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch



IGNORE = -100


PLAIN_TEMPLATE = "Question: {q}\nAnswer:"


@dataclass(frozen=True)
class Example:
    """Token ids of a prompt and of its scored continuation (answer tokens + end-of-sequence)."""

    prompt_ids: tuple[int, ...]
    answer_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.answer_ids)


def format_prompt(tokenizer, question: str) -> str:
    """Chat template with a generation prompt (Qwen3: thinking disabled) or ``Question: q\\nAnswer:``."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                             add_generation_prompt=True, enable_thinking=False)
    return PLAIN_TEMPLATE.format(q=question)


def chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    # A chat template already holds its special tokens; the plain format gets the tokenizer's BOS if any.
    add_special = not getattr(tokenizer, "chat_template", None)
    return tokenizer(prompt, add_special_tokens=add_special)["input_ids"]


STYLES = ("tofu", "open-unlearning")


def encode_qa(tokenizer, question: str, answer: str, max_length: int = 512, style: str = "tofu") -> Example:
    """Prompt and scored continuation of one QA pair.

    ``tofu`` (default, TOFU's definition): the prompt and the answer are tokenized separately, so the
    scored span is exactly the answer + one EOS. ``open-unlearning``: what open-unlearning scores, the
    whole templated conversation with EOS appended when it does not already end in one, minus the
    templated prompt (with a chat template like SmolLM2's: answer + ``<|im_end|>`` + ``\n`` + ``<|im_end|>``);
    no truncation, as there.
    """
    if style == "open-unlearning":
        return _encode_open_unlearning(tokenizer, question, answer)
    if style != "tofu":
        raise ValueError(f"unknown scoring style {style!r}; valid: {', '.join(STYLES)}")
    prompt_ids = chat_prompt_ids(tokenizer, format_prompt(tokenizer, question))
    # The plain format ends with "Answer:"; the separating space belongs to the answer (BPE convention).
    text = answer if getattr(tokenizer, "chat_template", None) else " " + answer
    answer_ids = tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    overflow = len(prompt_ids) + len(answer_ids) - max_length
    if overflow > 0:  # keep the whole answer when we can; cut the prompt from the left
        cut = min(overflow, max(len(prompt_ids) - 1, 0))
        prompt_ids = prompt_ids[cut:]
        answer_ids = answer_ids[: max_length - len(prompt_ids)]
    return Example(tuple(prompt_ids), tuple(answer_ids))


def encode_text(tokenizer, text: str, max_length: int | None = 512, eos: bool = True) -> Example:
    """A plain text as a causal-LM example (MUSE's raw corpora, privleak texts): tokenized with the
    tokenizer's special tokens (a BOS where it has one), every token after the first scored (the first
    has nothing before it to be predicted from), then EOS when ``eos``; the first ``max_length`` tokens
    (None: all). The first token is the 'prompt' so the layout is the same as a QA pair's."""
    ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if max_length is not None:
        ids = ids[: max_length - (1 if eos else 0)]
    if len(ids) < 2:
        raise ValueError(f"text too short to score (fewer than 2 tokens): {text[:60]!r}")
    return Example(tuple(ids[:1]), tuple(ids[1:]) + ((tokenizer.eos_token_id,) if eos else ()))


def open_unlearning_prompt(tokenizer, question: str) -> list[int]:
    if not getattr(tokenizer, "chat_template", None):
        return chat_prompt_ids(tokenizer, format_prompt(tokenizer, question))
    return _ids(tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=True,
                                              add_generation_prompt=True, enable_thinking=False))


def _encode_open_unlearning(tokenizer, question: str, answer: str) -> Example:
    prompt = open_unlearning_prompt(tokenizer, question)
    if not getattr(tokenizer, "chat_template", None):
        full = tokenizer(PLAIN_TEMPLATE.format(q=question) + " " + answer)["input_ids"]
    else:
        chat = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        full = _ids(tokenizer.apply_chat_template(chat, tokenize=True, enable_thinking=False))
    if full[-1] != tokenizer.eos_token_id:
        full = full + [tokenizer.eos_token_id]
    if tuple(full[: len(prompt)]) != tuple(prompt):
        raise ValueError(f"the templated prompt is not a token prefix of the conversation for {question[:60]!r}; "
                         "open-unlearning's scored span is undefined for this tokenizer")
    return Example(tuple(prompt), tuple(full[len(prompt):]))


# transformers 4.x ``clean_up_tokenization_spaces=True`` (5.x ignores the flag for BPE tokenizers), in order
_CLEAN_UP = ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"), (" 'm", "'m"),
             (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"))


def clean_up_tokenization(text: str) -> str:
    """Remove the spaces before punctuation and English contractions, as open-unlearning's decoding did."""
    for a, b in _CLEAN_UP:
        text = text.replace(a, b)
    return text


def _ids(out) -> list[int]:
    """apply_chat_template(tokenize=True) returns a list, or a BatchEncoding in recent transformers."""
    return list(out["input_ids"] if hasattr(out, "keys") else out)


def attention_mask(ids: torch.Tensor, mask: torch.Tensor, hide_token: int | None) -> torch.Tensor:
    """The padding mask, with every ``hide_token`` also masked out of attention when given (open-unlearning's
    collator masks ``ids != pad``, which hides every EOS when pad = EOS); positions are not affected."""
    return mask if hide_token is None else mask * (ids != hide_token)


def pad_sequences(seqs, pad_id: int, *, left: bool = False, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, attention mask) of token sequences padded to the longest: right padding, or left padding
    (prompts for generation or a shared KV cache, so that every row's last column is a real token)."""
    width = max(len(q) for q in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, q in enumerate(seqs):
        span = slice(width - len(q), width) if left else slice(0, len(q))
        ids[i, span] = torch.tensor(q, dtype=torch.long)
        mask[i, span] = 1
    return ids.to(device), mask.to(device)


def collate(examples: list[Example], pad_id: int, device: str | torch.device = "cpu",
            hide_token: int | None = None) -> dict[str, torch.Tensor]:
    """Right-padded batch; labels are IGNORE on prompt and padding. Causal attention means real tokens
    never see the (trailing) padding, so a row scores the same alone or in a batch. ``hide_token``: see
    ``attention_mask``."""
    ids, mask = pad_sequences([e.prompt_ids + e.answer_ids for e in examples], pad_id)
    mask = attention_mask(ids, mask, hide_token)
    labels = torch.full_like(ids, IGNORE)
    for i, e in enumerate(examples):
        labels[i, len(e.prompt_ids): len(e)] = torch.tensor(e.answer_ids)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}
