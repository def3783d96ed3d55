"""Membership inference scores (LOSS, ZLib, Min-K%, Min-K%++) and their ROC AUC.

Every score here is oriented so that higher means "more likely a training member".
"""

from __future__ import annotations

import math
import zlib

import numpy as np
from sklearn.metrics import roc_auc_score

DEFAULT_K = 0.4


def loss_score(mean_nll: np.ndarray) -> np.ndarray:
    """LOSS attack: -(length-normalised NLL)."""
    return -np.asarray(mean_nll, dtype=float)  # negated: low loss = member


def zlib_score(mean_nll: np.ndarray, texts: list[str]) -> np.ndarray:
    """ZLib attack: -(NLL / zlib-compressed byte length of the text)."""
    sizes = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=float)
    return -np.asarray(mean_nll, dtype=float) / sizes  # negated: low ratio = member


def _lowest_mean(values: np.ndarray, k: float) -> float:
    if len(values) == 0:
        return float("nan")
    n = max(1, math.floor(k * len(values)))
    return float(np.sort(values)[:n].mean())


def min_k_score(token_logprobs: list[np.ndarray], k: float = DEFAULT_K) -> np.ndarray:
    """Min-K% Prob: mean of the lowest floor(k*N) token log-probs (at least one)."""
    return np.array([_lowest_mean(np.asarray(t, dtype=float), k) for t in token_logprobs])


def min_k_plus_plus_score(token_logprobs, mu, sigma, k: float = DEFAULT_K) -> np.ndarray:
    """Min-K%++: z_t = (log p(x_t) - mu_t) / sigma_t, then the mean of the lowest k fraction."""
    out = []
    for lp, m, s in zip(token_logprobs, mu, sigma):
        z = (np.asarray(lp, float) - np.asarray(m, float)) / np.maximum(np.asarray(s, float), 1e-12)
        out.append(_lowest_mean(z, k))
    return np.array(out)


def scores_of(scored, texts: list[str], k: float = DEFAULT_K) -> dict[str, np.ndarray]:
    """Every score of the texts from one scoring pass (``unlearn.scoring.score_examples`` with token statistics:
    ``mean_nll``, ``token_logprobs``, ``token_mu``, ``token_sigma``): {"loss", "zlib", "min_k", "min_k_plus_plus"}."""
    return {"loss": loss_score(scored.mean_nll), "zlib": zlib_score(scored.mean_nll, texts),
            "min_k": min_k_score(scored.token_logprobs, k),
            "min_k_plus_plus": min_k_plus_plus_score(scored.token_logprobs, scored.token_mu, scored.token_sigma, k)}


def auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """ROC AUC of members (label 1) against non-members (label 0); 0.5 = indistinguishable."""
    scores = np.concatenate([member_scores, nonmember_scores])
    labels = np.concatenate([np.ones(len(member_scores)), np.zeros(len(nonmember_scores))])
    finite = np.isfinite(scores)
    if finite.sum() < len(scores):
        raise ValueError(f"{int((~finite).sum())} membership scores are not finite (empty answers?)")
    return float(roc_auc_score(labels, scores))
