"""MUSE metrics (Shi et al. 2024), as the paper defines them and the authors' scripts
compute them (``verbmem/get_rouge.py``, ``knowmem/get_rouge_qa.py``, ``privleak``):

- VerbMem: ROUGE-L F1 (no stemming) between the greedy continuation of ``prompt`` and ``gt`` cut to the
  same number of tokens as were generated (``max_new_tokens``).
- KnowMem: few-shot prompt of ``Question: {q}\\nAnswer: {a}\\n\\n`` blocks, then ``Question: {q}\\nAnswer: ``;
  the greedy answer cut at the first ``\\n\\n``, then ``\\nQuestion``, then ``Question:``; ROUGE-L F1
  against the answer.
- PrivLeak: (AUC_model - AUC_retrain) / AUC_retrain x 100 with MUSE's AUC orientation (1 - the usual
  members-score-higher AUC of Min-K% Prob, k = 0.4, forget vs holdout texts).
"""

from __future__ import annotations

import numpy as np

KNOWMEM_STOPS = ("\n\n", "\nQuestion", "Question:")  # applied in this order, as the authors' script does


def rouge_l_f1(predictions: list[str], references: list[str]) -> np.ndarray:
    """ROUGE-L F-measure per pair, rouge_score's tokenizer (lower case, alphanumeric runs), no stemming."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return np.array([scorer.score(ref, pred)["rougeL"].fmeasure for pred, ref in zip(predictions, references)])


def knowmem_prompt(question: str, icl: list[tuple[str, str]]) -> str:
    """The few-shot prompt, byte for byte: every in-context pair as ``Question: q\\nAnswer: a\\n\\n``, then the
    question with ``Answer: `` (trailing space) left open."""
    shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in icl)
    return shots + f"Question: {question}\nAnswer: "


def cut_answer(text: str) -> str:
    """The generated answer up to the first stop string (each split in turn, the part before it kept)."""
    for stop in KNOWMEM_STOPS:
        text = text.split(stop)[0]
    return text


# characters of text past a stop string before generation may stop: no stop string holds a character of the decode
# clean-up's patterns, so text after a stop cannot change the cut (a property test in tests/test_muse.py checks
# it, clean-up included); the margin also keeps a last token's partial UTF-8 character clear of the answer
STOP_MARGIN = 16


def answer_settled(text: str) -> bool:
    """True when appending any text to this raw continuation leaves ``cut_answer(clean_up_tokenization(.))``
    unchanged: a stop string starts at least ``STOP_MARGIN`` characters before the end. Generation may stop
    there (the evaluation's answers are those of the full 32 tokens, in less time)."""
    found = [p for p in (text.find(s) for s in KNOWMEM_STOPS) if p >= 0]
    return bool(found) and min(found) + STOP_MARGIN <= len(text)


def muse_auc(usual_auc: float) -> float:
    """MUSE's orientation of the Min-K% AUC (forget as the negative class): 1 - the usual AUC, in which
    members (forget) score higher. A model that memorised the forget texts scores about 0, one that never
    saw them about 0.5."""
    return 1.0 - usual_auc


def privleak(auc_model: float, auc_retrain: float) -> float:
    """(AUC_model - AUC_retrain) / AUC_retrain x 100 (both in MUSE's orientation): 0 ideal, strongly negative
    = under-unlearned (a fine-tuned target scores about -100), positive = over-unlearned."""
    if auc_retrain <= 0:
        return float("nan")
    return (auc_model - auc_retrain) / auc_retrain * 100.0
