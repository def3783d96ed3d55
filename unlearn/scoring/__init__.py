"""Scoring and generation: token ids from questions, answers and texts (``encoding``), answer log-probabilities,
NLL and MIA token statistics (``answers``), greedy generation (``generation``), bf16 copies of frozen weights
for autocast passes (``bf16_weights``). The names every caller uses are
importable from here; the tuning knobs (``answers.LOGIT_CHUNK``, ``answers.PREFIX_MIN``, ``answers.CHUNK_COST``,
``generation.ENGINE``) are read from their own modules."""

from unlearn.scoring.answers import (ScoreResult, answer_chunks, answer_logits, answer_logprobs, body_and_head,
                                     common_prefix, length_sorted_batches, mean_nll, prefix_cache, score_answers,
                                     score_examples, shared_prompt_logits)
from unlearn.scoring.bf16_weights import FrozenWeightsBf16, bf16_weights_under_autocast
from unlearn.scoring.encoding import (IGNORE, PLAIN_TEMPLATE, STYLES, Example, attention_mask, chat_prompt_ids,
                                      clean_up_tokenization, collate, encode_qa, encode_text, format_prompt,
                                      open_unlearning_prompt, pad_sequences)
from unlearn.scoring.generation import generate, generate_ids, greedy_batch

__all__ = ["answer_chunks", "answer_logits", "answer_logprobs", "attention_mask", "bf16_weights_under_autocast",
           "body_and_head", "chat_prompt_ids", "clean_up_tokenization", "collate", "common_prefix", "encode_qa",
           "encode_text", "Example", "format_prompt", "FrozenWeightsBf16", "generate", "generate_ids", "greedy_batch",
           "IGNORE", "length_sorted_batches", "mean_nll", "open_unlearning_prompt", "pad_sequences", "PLAIN_TEMPLATE",
           "prefix_cache", "score_answers", "score_examples", "ScoreResult", "shared_prompt_logits", "STYLES"]
