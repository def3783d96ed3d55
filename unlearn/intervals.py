"""Bootstrap 95% intervals of the three summary columns, over questions.

A benchmark describes each summary measure as a function of per-question values: for every evaluation set a
``(n, k)`` array (n questions, k per-question terms) per model, and a ``value`` function of the sets' column
means. Efficacy, retain performance and the MIA AUC are then recomputed on resampled questions:

- every set is resampled on its own (n draws with replacement), and the target, the gold and the evaluated
  model take the *same* draw of a set, since they answer the same questions (a paired bootstrap);
- the MIA AUC resamples its member rows and its non-member rows separately;
- the interval is the 2.5th and 97.5th percentile of the replicates (percentile bootstrap), NaN replicates
  (an efficacy whose target-gold gap vanished in a draw) left out; fewer than half finite gives NaN bounds.

The point estimate of each column is the value on the questions as they are, which equals the cell's summary
(checked by the tests). What the interval covers is question sampling only: the run's seed, the target's
training and the tuned settings are fixed; ``unlearn bench --seeds N`` measures the spread over seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.stats import rankdata

N_BOOT = 1000
LEVEL = 0.95

Sets = dict[str, np.ndarray]  # set name -> (n, k) per-question values
ValueFn = Callable[[dict[str, np.ndarray]], np.ndarray]  # set name -> (B, k) means  ->  (B,) values


@dataclass(frozen=True)
class Measure:
    """A summary measure of one benchmark: per-question terms of each model and how their means combine."""

    value: ValueFn
    target: Sets
    model: Sets
    gold: Sets | None = None  # None: the gold's value is ``gold_constant`` (WMDP: chance)
    gold_constant: float | None = None


def as_sets(sets: dict[str, object]) -> Sets:
    """``{name: values}`` with each value a list/array of n numbers or an (n, k) array, as float (n, k) arrays."""
    out = {}
    for name, v in sets.items():
        a = np.asarray(v, float)
        out[name] = a[:, None] if a.ndim == 1 else a
    return out


def mean_of_first(means: dict[str, np.ndarray]) -> np.ndarray:
    """The measure of a single set with a single term: its mean."""
    (m,) = means.values()
    return m[:, 0]


def auc_rows(members: np.ndarray, nonmembers: np.ndarray) -> np.ndarray:
    """ROC AUC (members as the positive class, ties counted half) of each row of (B, n1) and (B, n0) scores:
    the Mann-Whitney statistic from average ranks, equal to ``roc_auc_score`` row by row."""
    n1, n0 = members.shape[1], nonmembers.shape[1]
    ranks = rankdata(np.concatenate([members, nonmembers], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def _draws(sets: Sets, rng: np.random.Generator, n_boot: int) -> dict[str, np.ndarray]:
    return {name: rng.integers(0, len(a), size=(n_boot, len(a))) for name, a in sets.items()}


def _means(sets: Sets, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: a[draws[name]].mean(axis=1) for name, a in sets.items()}


def _identity(sets: Sets) -> dict[str, np.ndarray]:
    return {name: np.arange(len(a))[None, :] for name, a in sets.items()}


def _check_paired(what: str, a: Sets, b: Sets) -> None:
    if {k: len(v) for k, v in a.items()} != {k: len(v) for k, v in b.items()}:
        raise ValueError(f"{what}: the models' per-question sets differ "
                         f"({ {k: len(v) for k, v in a.items()} } vs { {k: len(v) for k, v in b.items()} })")


def _efficacy(m_t: np.ndarray, m_g: np.ndarray, m: np.ndarray) -> np.ndarray:
    gap = m_t - m_g
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(gap > 0, np.clip((m_t - m) / gap, 0, 1), np.nan)


def _retain(u_t: np.ndarray, u: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(u_t > 0, u / u_t, np.nan)


def _bounds(values: np.ndarray, level: float) -> list[float | None]:
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) / 2:
        return [None, None]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(finite, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _columns(forget: Measure, utility: Measure, members: np.ndarray | None, nonmembers: np.ndarray | None,
             draws: dict[str, np.ndarray], mia_draws: tuple[np.ndarray, np.ndarray] | None) -> dict[str, np.ndarray]:
    m_t, m = forget.value(_means(forget.target, draws)), forget.value(_means(forget.model, draws))
    m_g = (forget.value(_means(forget.gold, draws)) if forget.gold is not None
           else np.full_like(m_t, float(forget.gold_constant)))
    out = {"forget_efficacy": _efficacy(m_t, m_g, m),
           "retain_performance": _retain(utility.value(_means(utility.target, draws)), utility.value(_means(utility.model, draws)))}
    if members is not None and mia_draws is not None:
        out["mia_auc"] = auc_rows(members[mia_draws[0]], nonmembers[mia_draws[1]])
    return out


def summary_intervals(forget: Measure, utility: Measure, members=None, nonmembers=None, *, n_boot: int = N_BOOT,
                      seed: int = 0, level: float = LEVEL) -> dict:
    """``{"point": {column: value}, "ci": {column: [lo, hi]}, "n_boot", "level", "method"}`` for forget efficacy,
    retain performance and (with member / non-member scores) the MIA AUC. Set names must differ between the
    forget and the utility measure (each set has one draw per replicate)."""
    for what, meas in (("forget", forget), ("utility", utility)):
        _check_paired(what, meas.target, meas.model)
        if meas.gold is not None:
            _check_paired(what, meas.target, meas.gold)
    if set(forget.target) & set(utility.target):
        raise ValueError(f"forget and utility sets share names: {sorted(set(forget.target) & set(utility.target))}")
    if forget.gold is None and forget.gold_constant is None:
        raise ValueError("the forget measure needs the gold's per-question values or a constant")
    sets = {**forget.target, **utility.target}
    mia = members is not None and nonmembers is not None and len(members) and len(nonmembers)
    if mia:
        members, nonmembers = np.asarray(members, float), np.asarray(nonmembers, float)
    point = _columns(forget, utility, members, nonmembers, _identity(sets),
                     (np.arange(len(members))[None, :], np.arange(len(nonmembers))[None, :]) if mia else None)
    rng = np.random.default_rng(seed)
    draws = _draws(sets, rng, n_boot)
    mia_draws = ((rng.integers(0, len(members), (n_boot, len(members))),
                  rng.integers(0, len(nonmembers), (n_boot, len(nonmembers)))) if mia else None)
    reps = _columns(forget, utility, members, nonmembers, draws, mia_draws)
    return {"point": {k: float(v[0]) for k, v in point.items()},
            "ci": {k: _bounds(v, level) for k, v in reps.items()},
            "n_boot": n_boot, "level": level,
            "method": "percentile bootstrap over questions; sets resampled separately, paired across target, gold "
                      "and model; MIA members and non-members resampled separately"}


def mean_interval(values, *, n_boot: int = N_BOOT, level: float = LEVEL, seed: int = 0) -> list[float | None]:
    """Percentile bootstrap interval over questions of the mean of ``values`` (one number per question, e.g. 1.0
    where a multiple-choice answer is right): what a checkpoint's accuracy row is decided from."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return [None, None]
    rng = np.random.default_rng(seed)
    return _bounds(x[rng.integers(0, len(x), size=(n_boot, len(x)))].mean(axis=1), level)


def overlaps(a: list | None, b: list | None) -> bool | None:
    """Whether two intervals share a point (None when either is unknown)."""
    if not a or not b or None in a or None in b:
        return None
    return a[0] <= b[1] and b[0] <= a[1]


# ---------------------------------------------------------------- membership, over authors
MIN_CLUSTERS = 5  # fewer independent units (authors, articles, agents) a side: no interval (the spread is not estimable)


def cluster_ids(n: int, size: int) -> np.ndarray:
    """Row i's unit when rows come in consecutive blocks of ``size`` (TOFU: 20 questions per author)."""
    return np.arange(n) // max(1, size)


def _cluster_draw(ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    units = np.unique(ids)
    chosen = rng.choice(units, size=len(units), replace=True)
    return np.concatenate([np.flatnonzero(ids == u) for u in chosen])


def membership_intervals(members, nonmembers, member_units, nonmember_units, gold_members=None, gold_nonmembers=None,
                         *, n_boot: int = N_BOOT, seed: int = 0, level: float = LEVEL) -> dict:
    """Cluster-bootstrap 95% intervals of the Min-K%++ AUC (forget rows = members against never-trained rows),
    resampling whole units (authors, articles, agents) rather than rows: the rows of one author share most of
    their score, so a row bootstrap is far too narrow. Members' and non-members' units are drawn separately;
    the model and the gold take the same draw (the same rows). Returns ``{"mia_auc", "gold_mia_auc", "mia_gap",
    "mia_offset", "gold_mia_offset": [lo, hi] or None, "units": (members', non-members' count)}``, with
    ``mia_gap`` = |AUC - gold's| and ``mia_offset`` = |AUC - 0.5|; every interval is None with fewer than
    :data:`MIN_CLUSTERS` units on a side."""
    m, n = np.asarray(members, float), np.asarray(nonmembers, float)
    mu, nu = np.asarray(member_units), np.asarray(nonmember_units)
    if len(mu) != len(m) or len(nu) != len(n):
        raise ValueError(f"units: {len(mu)} for {len(m)} members, {len(nu)} for {len(n)} non-members")
    units = (len(np.unique(mu)), len(np.unique(nu)))
    out = {k: None for k in ("mia_auc", "gold_mia_auc", "mia_gap", "mia_offset", "gold_mia_offset")}
    out["units"] = units
    if min(units) < MIN_CLUSTERS:
        return out
    gold = gold_members is not None and gold_nonmembers is not None
    if gold:
        gm, gn = np.asarray(gold_members, float), np.asarray(gold_nonmembers, float)
        if len(gm) != len(m) or len(gn) != len(n):
            raise ValueError("the gold's membership rows differ from the model's")
    rng = np.random.default_rng(seed)
    reps = {k: np.empty(n_boot) for k in ("mia_auc", "gold_mia_auc")}
    for b in range(n_boot):
        i, j = _cluster_draw(mu, rng), _cluster_draw(nu, rng)
        reps["mia_auc"][b] = auc_rows(m[i][None, :], n[j][None, :])[0]
        reps["gold_mia_auc"][b] = auc_rows(gm[i][None, :], gn[j][None, :])[0] if gold else np.nan
    out["mia_auc"] = _bounds(reps["mia_auc"], level)
    out["mia_offset"] = _bounds(np.abs(reps["mia_auc"] - 0.5), level)
    if gold:
        out["gold_mia_auc"] = _bounds(reps["gold_mia_auc"], level)
        out["gold_mia_offset"] = _bounds(np.abs(reps["gold_mia_auc"] - 0.5), level)
        out["mia_gap"] = _bounds(np.abs(reps["mia_auc"] - reps["gold_mia_auc"]), level)
    return out
