"""The TOFU evaluator: scores a model on every split and returns TOFU-format logs plus ES and MIA."""

from __future__ import annotations

from contextlib import contextmanager
import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from unlearn.data.tofu import EVAL_ROWS, TofuData, TofuRow
from unlearn.metrics import mia
from unlearn.metrics.tofu import SplitScores, aggregate, extraction_strength, rouge_l_recall, to_log
from unlearn.scoring import clean_up_tokenization, encode_qa, format_prompt, generate, score_examples


COMPATS = ("tofu", "open-unlearning")
PROTOCOL_NAMES = ("full", "reduced")


@dataclass(frozen=True)
class EvalProtocol:
    """How much of each split is scored, and under which conventions; the defaults are the published
    protocol (TOFU's definitions, first 300 rows, greedy <= 200 tokens, scores in float32)."""

    max_rows: int | None = EVAL_ROWS  # first rows of each evaluation split (None: every row)
    retain_rows: int | None = None  # cap on retain rows (None: max_rows)
    utility_rows: int | None = None  # cap on real-authors and world-facts rows (None: max_rows)
    max_new_tokens: int = 200
    batch_size: int = 16  # scored answers per batch
    generation_batch_size: int | None = None  # prompts per greedy-generation batch (None: batch_size)
    mink_k: float = mia.DEFAULT_K
    bf16: bool = False  # bf16 autocast for greedy generation
    score_bf16: bool = False  # bf16 autocast for scoring too (reduced protocol only: it moves Prob and R by ~1e-2)
    compat: str = "tofu"  # "tofu": TOFU's definitions; "open-unlearning": that tool's (scoring.encode_qa)
    name: str = "full"  # "full" (published), "reduced" (CPU dry run) or "custom"

    def describe(self) -> str:
        rows = lambda n: "all" if n is None else str(n)  # noqa: E731
        prec = ("bf16 autocast" if self.score_bf16 else "fp32 scores, bf16 generation") if self.bf16 else "fp32"
        return (f"{self.name} protocol ({self.compat} conventions, {prec}): {rows(self.max_rows)} forget rows, "
                f"{rows(self.retain_rows or self.max_rows)} retain rows, {rows(self.utility_rows or self.max_rows)} "
                f"real-author/world-fact rows, greedy <= {self.max_new_tokens} new tokens")

    @property
    def open_unlearning(self) -> bool:
        return self.compat == "open-unlearning"


def protocol_preset(name: str = "full", compat: str = "tofu", bf16: bool = False) -> EvalProtocol:
    """``full``: the published protocol (300 rows, 200 tokens; bf16 only for generation, scores in float32,
    within 1e-3 of fp32 on Prob and truth ratio). ``reduced``: the CPU dry run (40 forget, 10 retain,
    10 real-author, 10 world-fact rows, 48 tokens; bf16 autocast everywhere where native, deviation in the
    README). ``compat="open-unlearning"`` takes that tool's conventions and, under ``full``, its rows (all
    of every split: 400 retain, 100 real-author, 117 world-fact), batches of 32 and Min-K k = 0.4."""
    if compat not in COMPATS:
        raise ValueError(f"unknown compatibility mode {compat!r}; valid: {', '.join(COMPATS)}")
    if name == "full":
        p = EvalProtocol(bf16=bf16)
    elif name == "reduced":
        p = EvalProtocol(max_rows=40, retain_rows=10, utility_rows=10, max_new_tokens=48, batch_size=20,
                         generation_batch_size=80, bf16=bf16, score_bf16=bf16, name="reduced")
    else:
        raise ValueError(f"unknown protocol {name!r}; valid: {', '.join(PROTOCOL_NAMES)}")
    if compat == "open-unlearning":
        rows = {"max_rows": None} if name == "full" else {}
        p = dataclasses.replace(p, compat=compat, batch_size=32, generation_batch_size=32, **rows)
    return p


def split_texts(rows: list[TofuRow]) -> tuple[list[tuple[str, str]], bool, int]:
    """(question, text) pairs scored for a split: answers, paraphrases (when every row has one), then k
    perturbed answers per row (k = the fewest any row has)."""
    has_para = all(r.paraphrased_answer for r in rows)
    k = min(len(r.perturbed_answers) for r in rows)
    texts = [(r.question, r.answer) for r in rows]
    texts += [(r.question, r.paraphrased_answer) for r in rows] if has_para else []
    texts += [(r.question, p) for r in rows for p in r.perturbed_answers[:k]]
    return texts, has_para, k


def split_scores(rows: list[TofuRow], res, has_para: bool, k: int, prompts: list[str], gens: list[str],
                 references: list[str] | None = None) -> SplitScores:
    n = len(rows)
    gt, para, pert = res.take(0, n), res.take(n, 2 * n) if has_para else None, res.take(res.n_tokens.size - n * k, res.n_tokens.size)
    return SplitScores(gt, para, pert.mean_nll.reshape(n, k), (-pert.logprob_sum).reshape(n, k),
                       pert.n_tokens.reshape(n, k), prompts, gens, references or [r.answer for r in rows])


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
    if protocol.compat not in COMPATS:
        raise ValueError(f"unknown compatibility mode {protocol.compat!r}; valid: {', '.join(COMPATS)}")
    with _cacheable_weights(model, protocol.bf16):
        if reference_only:
            return reference_aggregates(model, tok, data, protocol, progress)
        return _evaluate_tofu(model, tok, data, protocol, progress)


def _autocast(model, enabled: bool):
    return torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16, enabled=enabled)


def rouge_reference(tok, row: TofuRow, protocol: EvalProtocol) -> str:
    """The text a generation is compared with: the answer (TOFU), or open-unlearning's: the templated
    conversation decoded without special tokens and with tokenization-space clean-up, minus the decoded
    prompt, stripped."""
    if not protocol.open_unlearning:
        return row.answer
    e = encode_qa(tok, row.question, row.answer, style=protocol.compat)
    decode = lambda ids: clean_up_tokenization(tok.decode(list(ids), skip_special_tokens=True))  # noqa: E731
    return decode(e.prompt_ids + e.answer_ids).replace(decode(e.prompt_ids), "").strip()


def _protocol_splits(data: TofuData, protocol: EvalProtocol) -> dict[str, list[TofuRow]]:
    n = protocol.max_rows
    return {"forget": data.forget[:n], "retain": data.retain_eval[: protocol.retain_rows or n],
            "real_authors": data.real_authors[: protocol.utility_rows or n],
            "world_facts": data.world_facts[: protocol.utility_rows or n]}


def _score_and_generate(model, tok, splits: dict[str, list[TofuRow]], scored: list[str], protocol: EvalProtocol,
                        progress: bool, holdout: list[TofuRow] = ()):
    """Every text of the ``scored`` splits (then the ``holdout`` answers) in one scoring call, so a question's
    prompt is computed once for its answer, paraphrase and perturbed answers and batches stay full across
    splits; greedy answers to every split's questions in one generation call (open-unlearning: one per
    split, as that tool batches them). Returns (TOFU logs of the scored splits, the scores, the generations
    in ``splits`` order, each scored part's span in the scores). Token statistics (Min-K%++, ES) are kept
    for the forget answers and the holdout. Scores run in float32 unless ``protocol.score_bf16``."""
    texts, stats, spans, layout = [], [], {}, {}
    for name in scored:
        t, has_para, k = split_texts(splits[name])
        spans[name], layout[name] = (len(texts), len(texts) + len(t)), (has_para, k)
        stats += [name == "forget" and i < len(splits[name]) for i in range(len(t))]
        texts += t
    spans["holdout"] = (len(texts), len(texts) + len(holdout))
    texts += [(r.question, r.answer) for r in holdout]
    stats += [True] * len(holdout)
    ou = protocol.open_unlearning
    with _autocast(model, protocol.score_bf16):
        res = score_examples(model, [encode_qa(tok, q, a, style=protocol.compat) for q, a in texts], tok.pad_token_id,
                             batch_size=protocol.batch_size, token_stats=stats, progress=progress, desc="score",
                             hide_token=tok.pad_token_id if ou else None)
    gen_kw = dict(max_new_tokens=protocol.max_new_tokens, batch_size=protocol.generation_batch_size or protocol.batch_size,
                  progress=progress, style=protocol.compat)
    with _autocast(model, protocol.bf16):
        if ou:
            gens = [g for rows in splits.values() for g in generate(model, tok, [r.question for r in rows], **gen_kw)]
        else:
            gens = generate(model, tok, [r.question for rows in splits.values() for r in rows], **gen_kw)
    starts = dict(zip(splits, np.cumsum([0] + [len(rows) for rows in splits.values()]).tolist()))
    logs = {}
    for name in scored:
        rows, at = splits[name], starts[name]
        prompts = [format_prompt(tok, r.question) for r in rows]
        refs = [rouge_reference(tok, r, protocol) for r in rows]
        logs[name] = to_log(split_scores(rows, res.take(*spans[name]), *layout[name], prompts, gens[at: at + len(rows)], refs))
    return logs, res, gens, spans


def reference_aggregates(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """The target's share of a cell: forget ROUGE-L recall (efficacy's reference) and Model Utility (retain
    performance's), computed exactly as in the full evaluation (same rows, same greedy generations, same
    scores of the utility splits) without the forget paraphrase/perturbed answers, the holdout and the
    token statistics that only the evaluated model's own row needs: about a third of the work."""
    splits = _protocol_splits(data, protocol)
    logs, _, gens, _ = _score_and_generate(model, tok, splits, ["retain", "real_authors", "world_facts"], protocol,
                                           progress)
    forget_rouge = rouge_l_recall(gens[: len(splits["forget"])], [rouge_reference(tok, r, protocol) for r in splits["forget"]])
    return {"logs": logs, "aggregates": {**aggregate(logs), "forget_rouge": float(np.mean(forget_rouge))},
            "forget_rouge_rows": [float(x) for x in forget_rouge],
            "reference_only": True}


def _evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """{"logs": TOFU-format per-split logs, "aggregates": TOFU's numbers (no FQ), "extraction_strength",
    "mia": AUCs of forget vs holdout, "per_question": ES and MIA scores per row}."""
    splits = _protocol_splits(data, protocol)
    holdout = data.holdout[: len(splits["forget"])]
    logs, res, _, spans = _score_and_generate(model, tok, splits, list(splits), protocol, progress, holdout)
    forget_gt, hold = res.take(spans["forget"][0], spans["forget"][0] + len(splits["forget"])), res.take(*spans["holdout"])
    if protocol.open_unlearning:  # its MIA and ES paths drop the last scored token (the appended EOS)
        forget_gt, hold = _drop_last_token(forget_gt), _drop_last_token(hold)
    members = mia_scores(forget_gt, [r.answer for r in splits["forget"]], protocol.mink_k)
    others = mia_scores(hold, [r.answer for r in holdout], protocol.mink_k)
    es = extraction_strength(forget_gt.token_correct, floor_one_token=protocol.open_unlearning)
    return {
        "logs": logs,
        "aggregates": aggregate(logs),
        "extraction_strength": float(es.mean()),
        "mia": {f"{k}_auc": mia.auc(members[k], others[k]) for k in members},
        "per_question": {"forget_extraction_strength": es.tolist(),
                         "mia_forget": {k: v.tolist() for k, v in members.items()},
                         "mia_holdout": {k: v.tolist() for k, v in others.items()}},
    }


def _drop_last_token(res):
    """Token statistics without each example's last scored token (LOSS and ZLib keep the whole span)."""
    return dataclasses.replace(res, token_logprobs=[t[:-1] for t in res.token_logprobs], token_mu=[t[:-1] for t in res.token_mu],
                      token_sigma=[t[:-1] for t in res.token_sigma], token_correct=[t[:-1] for t in res.token_correct])
