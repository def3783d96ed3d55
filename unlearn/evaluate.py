"""The TOFU evaluator: scores a model on every split and returns TOFU-format logs plus ES and MIA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.data.tofu import EVAL_ROWS, TofuData, TofuRow
from unlearn.metrics import mia
from unlearn.metrics.tofu import SplitScores, aggregate, extraction_strength, to_log
from unlearn.scoring import encode_qa, format_prompt, generate, score_examples


@dataclass(frozen=True)
class EvalProtocol:
    """How much of each split is scored; the defaults are the published protocol."""

    max_rows: int = EVAL_ROWS  # first rows of each evaluation split
    retain_rows: int | None = None  # cap on retain rows (None: max_rows)
    utility_rows: int | None = None  # cap on real-authors and world-facts rows (None: max_rows)
    max_new_tokens: int = 200
    batch_size: int = 16
    mink_k: float = mia.DEFAULT_K
    bf16: bool = False  # bf16 autocast for scoring and generation (log-softmax stays float32)

    def describe(self) -> str:
        return (("bf16 autocast, " if self.bf16 else "") + f"first {self.max_rows} forget rows, {self.retain_rows or self.max_rows} retain rows, "
                f"{self.utility_rows or self.max_rows} real-author/world-fact rows, greedy <= {self.max_new_tokens} new tokens")


def score_split(model, tok, rows: list[TofuRow], protocol: EvalProtocol, *, token_stats: bool = False):
    pad, bs = tok.pad_token_id, protocol.batch_size
    gt = score_examples(model, [encode_qa(tok, r.question, r.answer) for r in rows], pad, batch_size=bs,
                        token_stats=token_stats)
    has_para = all(r.paraphrased_answer for r in rows)
    para = score_examples(model, [encode_qa(tok, r.question, r.paraphrased_answer) for r in rows], pad,
                          batch_size=bs) if has_para else None
    k = min(len(r.perturbed_answers) for r in rows)
    flat = [encode_qa(tok, r.question, p) for r in rows for p in r.perturbed_answers[:k]]
    pert = score_examples(model, flat, pad, batch_size=bs)
    gens = generate(model, tok, [r.question for r in rows], max_new_tokens=protocol.max_new_tokens, batch_size=bs)
    scores = SplitScores(gt, para, pert.mean_nll.reshape(len(rows), k), (-pert.logprob_sum).reshape(len(rows), k),
                         pert.n_tokens.reshape(len(rows), k), [format_prompt(tok, r.question) for r in rows], gens,
                         [r.answer for r in rows])
    return scores


def mia_scores(res, texts: list[str], k: float) -> dict[str, np.ndarray]:
    return {"loss": mia.loss_score(res.mean_nll), "zlib": mia.zlib_score(res.mean_nll, texts),
            "min_k": mia.min_k_score(res.token_logprobs, k),
            "min_k_plus_plus": mia.min_k_plus_plus_score(res.token_logprobs, res.token_mu, res.token_sigma, k)}


def evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol = EvalProtocol(), progress: bool = True) -> dict:
    device = next(model.parameters()).device.type
    with torch.autocast(device, dtype=torch.bfloat16, enabled=protocol.bf16):
        return _evaluate_tofu(model, tok, data, protocol, progress)


def _evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """{"logs": TOFU-format per-split logs, "aggregates": TOFU's numbers (no FQ), "extraction_strength",
    "mia": AUCs of forget vs holdout, "per_question": ES and MIA scores per row}."""
    n = protocol.max_rows
    splits = {"forget": data.forget[:n], "retain": data.retain_eval[: protocol.retain_rows or n],
              "real_authors": data.real_authors[: protocol.utility_rows or n],
              "world_facts": data.world_facts[: protocol.utility_rows or n]}
    logs, extra = {}, {}
    for name, rows in tqdm(splits.items(), desc="evaluate", disable=not progress, leave=False):
        s = score_split(model, tok, rows, protocol, token_stats=name == "forget")
        logs[name] = to_log(s)
        if name == "forget":
            extra["forget_gt"] = s.gt
    holdout = data.holdout[: len(splits["forget"])]
    hold = score_examples(model, [encode_qa(tok, r.question, r.answer) for r in holdout], tok.pad_token_id,
                          batch_size=protocol.batch_size, token_stats=True)
    members = mia_scores(extra["forget_gt"], [r.answer for r in splits["forget"]], protocol.mink_k)
    others = mia_scores(hold, [r.answer for r in holdout], protocol.mink_k)
    es = extraction_strength(extra["forget_gt"].token_correct)
    return {
        "logs": logs,
        "aggregates": aggregate(logs),
        "extraction_strength": float(es.mean()),
        "mia": {f"{k}_auc": mia.auc(members[k], others[k]) for k in members},
        "per_question": {"forget_extraction_strength": es.tolist(),
                         "mia_forget": {k: v.tolist() for k, v in members.items()},
                         "mia_holdout": {k: v.tolist() for k, v in others.items()}},
    }
