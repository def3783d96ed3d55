"""TOFU metrics (Maini et al. 2024, arXiv:2401.06121): Prob, ROUGE-L recall, truth ratio, Forget Quality,
Model Utility, extraction strength; per-question logs in TOFU's own format and their aggregation.

The same aggregation code reads TOFU's published logs (``unlearn tofu-aggregate``) and our own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import hmean, ks_2samp

# TOFU's log files and the split each holds
LOG_FILES = {"forget": "eval_log_forget.json", "retain": "eval_log.json",
             "real_authors": "eval_real_author_wo_options.json", "world_facts": "eval_real_world_wo_options.json"}
HIGHER_IS_BETTER = {"model_utility": True, "forget_quality": True, "forget_rouge": False, "forget_prob": False,
                    "forget_truth_ratio": True}


def prob(avg_nll: np.ndarray) -> np.ndarray:
    """P(a|q) = exp(-loss/n): per-token geometric-mean probability."""
    return np.exp(-np.asarray(avg_nll, dtype=float))  # negated: NLL -> log-prob


def normalised_prob(avg_true_nll: np.ndarray, avg_perturbed_nll: np.ndarray) -> np.ndarray:
    """P(a) / (P(a) + sum_j P(perturbed_j)) per question; perturbed is (N, k)."""
    p_true = prob(avg_true_nll)
    return p_true / (p_true + prob(avg_perturbed_nll).sum(-1))


def truth_ratio(avg_para_nll: np.ndarray, avg_perturbed_nll: np.ndarray) -> np.ndarray:
    """R = GM_j P(perturbed_j) / P(paraphrased) = exp(l(para) - mean_j l(pert_j)), per question."""
    return np.exp(np.asarray(avg_para_nll, float) - np.asarray(avg_perturbed_nll, float).mean(-1))


def truth_ratio_score(R: np.ndarray, forget: bool) -> float:
    """Forget: mean(min(R, 1/R)); retain / real authors / world facts: mean(max(0, 1 - R))."""
    R = np.asarray(R, float)
    return float(np.mean(np.minimum(R, 1 / R)) if forget else np.mean(np.maximum(0.0, 1 - R)))


def forget_quality(R_model: np.ndarray, R_gold: np.ndarray) -> float:
    """p-value of the two-sample KS test between per-question forget truth ratios (1.0 = like retraining)."""
    return float(ks_2samp(R_model, R_gold).pvalue)


def model_utility(values: list[float]) -> float:
    """Harmonic mean of the 9 utility terms; any zero term makes it zero."""
    arr = np.asarray(values, float)
    if np.any(arr <= 0):
        return 0.0
    return float(hmean(arr))


def rouge_l_recall(generations: list[str], answers: list[str]) -> np.ndarray:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return np.array([scorer.score(a, g)["rougeL"].recall for g, a in zip(generations, answers)])


def extraction_strength(token_correct: list[np.ndarray], floor_one_token: bool = False) -> np.ndarray:
    """ES = 1 - k*/|y|, k* the shortest teacher-forced prefix after which every remaining answer token is
    the model's greedy (argmax) prediction; 1 = the whole answer is extracted, 0 = not even its last token.
    ``floor_one_token``: open-unlearning's loop never looks past k = |y| - 1, so its ES is at least 1/|y|."""
    out = []
    for hits in token_correct:
        hits = np.asarray(hits, bool)
        n = len(hits)
        k = n
        while k > 0 and hits[k - 1]:
            k -= 1
        if floor_one_token:
            k = min(k, max(n - 1, 0))
        out.append(1 - k / n if n else 0.0)
    return np.array(out)


# ---------------------------------------------------------------- logs in TOFU's format
def _values(log: dict, key: str) -> np.ndarray:
    entries = log[key]
    return np.array([entries[k] for k in sorted(entries, key=int)], dtype=float)


def split_aggregates(log: dict, split: str) -> dict[str, float]:
    """Prob, ROUGE-L recall and truth-ratio score of one split's per-question log."""
    forget = split == "forget"
    scored = has_truth_ratio(log)  # a forget log scored without its paraphrased/perturbed answers has none
    pert = _values(log, "average_perturb_loss") if scored else None
    if split in ("real_authors", "world_facts"):
        p = float(np.mean(normalised_prob(_values(log, "avg_gt_loss"), pert)))
    else:
        p = float(np.mean(prob(_values(log, "avg_gt_loss"))))
    out = {"prob": p, "rouge": float(np.mean(_values(log, "rougeL_recall")))}
    if scored:
        out["truth_ratio"] = truth_ratio_score(truth_ratio(_values(log, "avg_paraphrased_loss"), pert), forget)
    return out


UTILITY_SETS = ("retain", "real_authors", "world_facts")


def utility_terms(logs: dict[str, dict]) -> dict[str, np.ndarray]:
    """Per question of each utility set, the three terms whose means Model Utility combines: (Prob, ROUGE-L
    recall, max(0, 1 - R)); Prob normalised over the perturbed answers on real authors and world facts, as in
    ``split_aggregates`` (each of its three numbers is the mean of one column)."""
    out = {}
    for split in UTILITY_SETS:
        log = logs[split]
        pert = _values(log, "average_perturb_loss")
        p = (normalised_prob(_values(log, "avg_gt_loss"), pert) if split != "retain" else prob(_values(log, "avg_gt_loss")))
        tr = np.maximum(0.0, 1 - truth_ratio(_values(log, "avg_paraphrased_loss"), pert))
        out[split] = np.stack([p, _values(log, "rougeL_recall"), tr], axis=1)
    return out


def model_utility_of_means(means: dict[str, np.ndarray]) -> np.ndarray:
    """Model Utility of rows of term means ({set: (B, 3)} from ``utility_terms``): the harmonic mean of the 9,
    zero where any term is (``model_utility``, row by row)."""
    terms = np.concatenate([means[s] for s in UTILITY_SETS], axis=1)
    with np.errstate(divide="ignore"):
        return np.where(np.any(terms <= 0, axis=1), 0.0, terms.shape[1] / np.sum(1 / terms, axis=1))


def aggregate(logs: dict[str, dict], retain_logs: dict[str, dict] | None = None) -> dict[str, float]:
    """TOFU's summary from per-split logs ({"forget": ..., "retain": ..., ...}); FQ needs ``retain_logs``."""
    out: dict[str, float] = {}
    utility = []
    for split in ("retain", "real_authors", "world_facts", "forget"):
        if split not in logs:
            continue
        for name, value in split_aggregates(logs[split], split).items():
            out[f"{split}_{name}"] = value
            if split != "forget":
                utility.append(value)
    if len(utility) == 9:
        out["model_utility"] = model_utility(utility)
    fq = forget_quality_of_logs(logs.get("forget"), retain_logs.get("forget")) if retain_logs is not None else None
    if fq is not None:
        out["forget_quality"] = fq
    return out


def forget_quality_of_logs(forget_log: dict | None, gold_forget_log: dict | None) -> float | None:
    """Forget Quality of a model's forget log against the gold's; None unless both hold truth ratios."""
    if not (has_truth_ratio(forget_log) and has_truth_ratio(gold_forget_log)):
        return None
    return forget_quality(forget_truth_ratios(forget_log), forget_truth_ratios(gold_forget_log))


def has_truth_ratio(log: dict | None) -> bool:
    """Whether a split's log holds the paraphrased and perturbed scores a truth ratio needs."""
    return bool(log) and "avg_paraphrased_loss" in log and "average_perturb_loss" in log


def forget_truth_ratios(log: dict) -> np.ndarray:
    return truth_ratio(_values(log, "avg_paraphrased_loss"), _values(log, "average_perturb_loss"))


def read_log_dir(path: str | Path) -> dict[str, dict]:
    """Read a TOFU-format evaluation folder; missing files are skipped, a folder with none is an error."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"log folder {str(path)!r} does not exist")
    logs = {}
    for split, name in LOG_FILES.items():
        f = path / name
        if f.is_file():
            try:
                logs[split] = json.loads(f.read_text())
            except json.JSONDecodeError as err:
                raise ValueError(f"{f}: malformed JSON ({err.msg}, line {err.lineno})") from None
    if not logs:
        raise FileNotFoundError(f"{path} holds none of {', '.join(LOG_FILES.values())}")
    return logs


def write_log_dir(logs: dict[str, dict], path: str | Path) -> None:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    for split, log in logs.items():
        (path / LOG_FILES[split]).write_text(json.dumps(log))


@dataclass(frozen=True)
class SplitScores:
    """Per-question scores of one split, before they become a TOFU log."""

    gt: object  # ScoreResult of the answers
    para: object | None  # ScoreResult of the paraphrased answers (None: the answer itself)
    pert_avg_nll: np.ndarray | None  # (N, k) length-normalised NLL of the perturbed answers (None: not scored)
    pert_sum_nll: np.ndarray | None
    pert_tokens: np.ndarray | None
    prompts: list[str]
    generations: list[str]
    answers: list[str]


def to_log(s: SplitScores) -> dict:
    """TOFU's per-question log: {metric: {row index as string: value}}; without the paraphrased/perturbed
    columns and the truth ratio when the perturbed answers were not scored."""
    rouge = rouge_l_recall(s.generations, s.answers)
    cols = {"avg_gt_loss": s.gt.mean_nll, "gt_loss": -s.gt.logprob_sum, "num_token_gt": s.gt.n_tokens,
            "rougeL_recall": rouge}
    if s.pert_avg_nll is not None:
        para = s.para if s.para is not None else s.gt
        cols.update({"avg_paraphrased_loss": para.mean_nll, "paraphrased_loss": -para.logprob_sum,
                     "num_token_paraphrased": para.n_tokens, "average_perturb_loss": s.pert_avg_nll,
                     "perturb_loss": s.pert_sum_nll, "num_token_perturb": s.pert_tokens,
                     "truth_ratio": truth_ratio(para.mean_nll, s.pert_avg_nll)})
    log = {k: {str(i): np.asarray(v[i]).tolist() for i in range(len(s.answers))} for k, v in cols.items()}
    log["generated_text"] = {str(i): [p, g, a] for i, (p, g, a) in enumerate(zip(s.prompts, s.generations, s.answers))}
    return log
