"""The TOFU evaluator: scores a model on every split and returns TOFU-format logs plus ES and MIA."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from unlearn.data.tofu import EVAL_ROWS, TofuData, TofuRow
from unlearn.metrics import mia
from unlearn.metrics.tofu import SplitScores, aggregate, extraction_strength, rouge_l_recall, to_log
from unlearn.scoring import encode_qa, format_prompt, generate, score_examples


@dataclass(frozen=True)
class EvalProtocol:
    """How much of each split is scored; the defaults are the published protocol."""

    max_rows: int = EVAL_ROWS  # first rows of each evaluation split
    retain_rows: int | None = None  # cap on retain rows (None: max_rows)
    utility_rows: int | None = None  # cap on real-authors and world-facts rows (None: max_rows)
    max_new_tokens: int = 200
    batch_size: int = 16  # scored answers per batch
    generation_batch_size: int | None = None  # prompts per greedy-generation batch (None: batch_size)
    mink_k: float = mia.DEFAULT_K
    bf16: bool = False  # bf16 autocast for scoring and generation (log-softmax stays float32)

    def describe(self) -> str:
        return (("bf16 autocast, " if self.bf16 else "") + f"first {self.max_rows} forget rows, {self.retain_rows or self.max_rows} retain rows, "
                f"{self.utility_rows or self.max_rows} real-author/world-fact rows, greedy <= {self.max_new_tokens} new tokens")


def split_texts(rows: list[TofuRow]) -> tuple[list[tuple[str, str]], bool, int]:
    """(question, text) pairs scored for a split: answers, paraphrases (when every row has one), then k
    perturbed answers per row (k = the fewest any row has)."""
    has_para = all(r.paraphrased_answer for r in rows)
    k = min(len(r.perturbed_answers) for r in rows)
    texts = [(r.question, r.answer) for r in rows]
    texts += [(r.question, r.paraphrased_answer) for r in rows] if has_para else []
    texts += [(r.question, p) for r in rows for p in r.perturbed_answers[:k]]
    return texts, has_para, k


def split_scores(rows: list[TofuRow], res, has_para: bool, k: int, prompts: list[str], gens: list[str]) -> SplitScores:
    n = len(rows)
    gt, para, pert = res.take(0, n), res.take(n, 2 * n) if has_para else None, res.take(res.n_tokens.size - n * k, res.n_tokens.size)
    return SplitScores(gt, para, pert.mean_nll.reshape(n, k), (-pert.logprob_sum).reshape(n, k),
                       pert.n_tokens.reshape(n, k), prompts, gens, [r.answer for r in rows])


@contextmanager
def _cacheable_weights(model, enabled: bool):
    """Autocast keeps its bf16 copy of a weight for the whole context only when the weight is a leaf that
    requires grad; frozen weights (a merged LoRA model's base, say) would be cast again at every forward,
    which made each greedy decoding step about twice as slow. Evaluation runs under no_grad, so marking
    the float weights as requiring grad for its duration builds no graph; the flags are restored after."""
    params = [p for p in model.parameters() if enabled and p.is_floating_point() and not p.requires_grad]
    for p in params:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(False)


def mia_scores(res, texts: list[str], k: float) -> dict[str, np.ndarray]:
    return {"loss": mia.loss_score(res.mean_nll), "zlib": mia.zlib_score(res.mean_nll, texts),
            "min_k": mia.min_k_score(res.token_logprobs, k),
            "min_k_plus_plus": mia.min_k_plus_plus_score(res.token_logprobs, res.token_mu, res.token_sigma, k)}


def evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol = EvalProtocol(), progress: bool = True,
                  reference_only: bool = False) -> dict:
    """The full evaluation, or with ``reference_only`` just what a target contributes to the summary
    columns (forget ROUGE and Model Utility; see ``reference_aggregates``)."""
    device = next(model.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=protocol.bf16), _cacheable_weights(model, protocol.bf16):
        if reference_only:
            return reference_aggregates(model, tok, data, protocol, progress)
        return _evaluate_tofu(model, tok, data, protocol, progress)


def _protocol_splits(data: TofuData, protocol: EvalProtocol) -> dict[str, list[TofuRow]]:
    n = protocol.max_rows
    return {"forget": data.forget[:n], "retain": data.retain_eval[: protocol.retain_rows or n],
            "real_authors": data.real_authors[: protocol.utility_rows or n],
            "world_facts": data.world_facts[: protocol.utility_rows or n]}


def _score_and_generate(model, tok, splits: dict[str, list[TofuRow]], scored: list[str], protocol: EvalProtocol,
                        progress: bool, holdout: list[TofuRow] = ()):
    """Every text of the ``scored`` splits (then the ``holdout`` answers) in one scoring call, so a question's
    prompt is computed once for its answer, paraphrase and perturbed answers and batches stay full across
    splits; greedy answers to every split's questions in one generation call. Returns (TOFU logs of the
    scored splits, the scores, the generations in ``splits`` order, each scored part's span in the scores).
    Token statistics (Min-K%++, ES) are kept for the forget answers and the holdout."""
    texts, stats, spans, layout = [], [], {}, {}
    for name in scored:
        t, has_para, k = split_texts(splits[name])
        spans[name], layout[name] = (len(texts), len(texts) + len(t)), (has_para, k)
        stats += [name == "forget" and i < len(splits[name]) for i in range(len(t))]
        texts += t
    spans["holdout"] = (len(texts), len(texts) + len(holdout))
    texts += [(r.question, r.answer) for r in holdout]
    stats += [True] * len(holdout)
    res = score_examples(model, [encode_qa(tok, q, a) for q, a in texts], tok.pad_token_id,
                         batch_size=protocol.batch_size, token_stats=stats, progress=progress, desc="score")
    questions = [r.question for rows in splits.values() for r in rows]
    gens = generate(model, tok, questions, max_new_tokens=protocol.max_new_tokens,
                    batch_size=protocol.generation_batch_size or protocol.batch_size, progress=progress)
    starts = dict(zip(splits, np.cumsum([0] + [len(rows) for rows in splits.values()]).tolist()))
    logs = {}
    for name in scored:
        rows, at = splits[name], starts[name]
        prompts = [format_prompt(tok, r.question) for r in rows]
        logs[name] = to_log(split_scores(rows, res.take(*spans[name]), *layout[name], prompts, gens[at: at + len(rows)]))
    return logs, res, gens, spans


def reference_aggregates(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """The target's share of a cell: forget ROUGE-L recall (efficacy's reference) and Model Utility (retain
    performance's), computed exactly as in the full evaluation (same rows, same greedy generations, same
    scores of the utility splits) without the forget paraphrase/perturbed answers, the holdout and the
    token statistics that only the evaluated model's own row needs: about a third of the work."""
    splits = _protocol_splits(data, protocol)
    logs, _, gens, _ = _score_and_generate(model, tok, splits, ["retain", "real_authors", "world_facts"], protocol,
                                           progress)
    forget_rouge = rouge_l_recall(gens[: len(splits["forget"])], [r.answer for r in splits["forget"]])
    return {"logs": logs, "aggregates": {**aggregate(logs), "forget_rouge": float(np.mean(forget_rouge))},
            "reference_only": True}


def _evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """{"logs": TOFU-format per-split logs, "aggregates": TOFU's numbers (no FQ), "extraction_strength",
    "mia": AUCs of forget vs holdout, "per_question": ES and MIA scores per row}."""
    splits = _protocol_splits(data, protocol)
    holdout = data.holdout[: len(splits["forget"])]
    logs, res, _, spans = _score_and_generate(model, tok, splits, list(splits), protocol, progress, holdout)
    forget_gt, hold = res.take(spans["forget"][0], spans["forget"][0] + len(splits["forget"])), res.take(*spans["holdout"])
    members = mia_scores(forget_gt, [r.answer for r in splits["forget"]], protocol.mink_k)
    others = mia_scores(hold, [r.answer for r in holdout], protocol.mink_k)
    es = extraction_strength(forget_gt.token_correct)
    return {
        "logs": logs,
        "aggregates": aggregate(logs),
        "extraction_strength": float(es.mean()),
        "mia": {f"{k}_auc": mia.auc(members[k], others[k]) for k in members},
        "per_question": {"forget_extraction_strength": es.tolist(),
                         "mia_forget": {k: v.tolist() for k, v in members.items()},
                         "mia_holdout": {k: v.tolist() for k, v in others.items()}},
    }
