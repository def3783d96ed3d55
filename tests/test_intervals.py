"""Bootstrap intervals of the summary columns (unlearn.intervals) and their place in the tables."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import roc_auc_score

from unlearn.benchmarks.base import Benchmark, summary_columns
from unlearn.benchmarks.tofu.metrics import aggregate, model_utility_of_means, utility_terms
from unlearn.intervals import Measure, as_sets, auc_rows, mean_of_first, overlaps, summary_intervals
from unlearn.metrics import mia
from unlearn.report import best_and_ties, to_latex, to_markdown


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12))
def test_auc_rows_is_roc_auc_with_ties(members, nonmembers):
    a, b = np.array(members, float), np.array(nonmembers, float)
    want = roc_auc_score(np.r_[np.ones(len(a)), np.zeros(len(b))], np.r_[a, b])
    assert auc_rows(a[None, :], b[None, :])[0] == pytest.approx(want, abs=1e-12)
    assert auc_rows(a[None, :], b[None, :])[0] == pytest.approx(mia.auc(a, b), abs=1e-12)


def _bernoulli(p, n, rng):
    return (rng.random(n) < p).astype(float)


def test_point_is_the_summary_and_the_width_is_the_binomial_one():
    """WMDP's shape by hand: target answers every hazard question (1.0), the gold is chance (0.25), the model
    half of 400: efficacy = (1 - m) / 0.75, sd(m) = sqrt(0.25 / 400) = 0.025, so the 95% interval of the
    efficacy is about +-1.96 * 0.025 / 0.75 = +-0.065 around the point."""
    rng = np.random.default_rng(1)
    n = 400
    model = _bernoulli(0.5, n, rng)
    target = np.ones(n)
    u_t, u_m = _bernoulli(0.9, 300, rng), _bernoulli(0.8, 300, rng)
    members, others = rng.normal(1, 1, 200), rng.normal(0, 1, 200)
    out = summary_intervals(Measure(mean_of_first, target=as_sets({"a": target}), model=as_sets({"a": model}), gold_constant=0.25),
                            Measure(mean_of_first, target=as_sets({"u": u_t}), model=as_sets({"u": u_m})), members, others)
    want = summary_columns(1.0, 0.25, model.mean(), u_t.mean(), u_m.mean(), mia.auc(members, others))
    for k, v in want.items():
        assert out["point"][k] == pytest.approx(v, abs=1e-12)
    lo, hi = out["ci"]["forget_efficacy"]
    assert lo < out["point"]["forget_efficacy"] < hi
    assert (hi - lo) / 2 == pytest.approx(1.96 * 0.025 / 0.75, rel=0.15)
    # the AUC of two unit normals one sd apart is 0.76; 200 + 200 rows give an interval of about +-0.05
    lo, hi = out["ci"]["mia_auc"]
    assert lo < out["point"]["mia_auc"] < hi and 0.06 < hi - lo < 0.14


def test_draws_are_paired_across_target_gold_and_model():
    """A model that answers exactly as the target has efficacy 0 in every replicate when the three take the
    same questions; drawing them independently (the planted bug) would spread it."""
    rng = np.random.default_rng(2)
    target, gold = rng.random(50), rng.random(50) * 0.2
    forget = Measure(mean_of_first, target=as_sets({"f": target}), gold=as_sets({"f": gold}), model=as_sets({"f": target}))
    util = Measure(mean_of_first, target=as_sets({"u": np.ones(10)}), model=as_sets({"u": np.ones(10)}))
    out = summary_intervals(forget, util)
    assert out["ci"]["forget_efficacy"] == [0.0, 0.0]
    assert out["ci"]["retain_performance"] == [1.0, 1.0]
    assert "mia_auc" not in out["ci"]


def test_unequal_sets_and_shared_names_are_refused():
    util = Measure(mean_of_first, target=as_sets({"u": np.ones(3)}), model=as_sets({"u": np.ones(3)}))
    with pytest.raises(ValueError, match="differ"):
        summary_intervals(Measure(mean_of_first, target=as_sets({"f": np.ones(4)}), model=as_sets({"f": np.ones(5)}),
                                  gold_constant=0.0), util)
    with pytest.raises(ValueError, match="share names"):
        summary_intervals(Measure(mean_of_first, target=as_sets({"u": np.ones(3)}), model=as_sets({"u": np.ones(3)}),
                                  gold_constant=0.0), util)


def _tofu_logs(rng, n=6):
    """TOFU-format logs of the three utility sets (random losses, 3 perturbed answers per question)."""
    def split():
        return {"avg_gt_loss": {str(i): float(rng.uniform(0.1, 3)) for i in range(n)},
                "avg_paraphrased_loss": {str(i): float(rng.uniform(0.1, 3)) for i in range(n)},
                "average_perturb_loss": {str(i): rng.uniform(0.1, 3, 3).tolist() for i in range(n)},
                "rougeL_recall": {str(i): float(rng.uniform(0, 1)) for i in range(n)}}
    return {s: split() for s in ("retain", "real_authors", "world_facts")}


def test_model_utility_of_the_terms_means_is_tofu_model_utility():
    rng = np.random.default_rng(3)
    for _ in range(5):
        logs = _tofu_logs(rng)
        terms = utility_terms(logs)
        means = {s: t.mean(axis=0)[None, :] for s, t in terms.items()}
        assert model_utility_of_means(means)[0] == pytest.approx(aggregate(logs)["model_utility"], rel=1e-12)
    logs = _tofu_logs(rng)
    logs["retain"]["rougeL_recall"] = {k: 0.0 for k in logs["retain"]["rougeL_recall"]}  # a zero term: MU is 0
    means = {s: t.mean(axis=0)[None, :] for s, t in utility_terms(logs).items()}
    assert model_utility_of_means(means)[0] == 0.0 == aggregate(logs)["model_utility"]


class _Fake(Benchmark):
    name = "fake"

    def __init__(self, measures):
        self.measures, self.seed = measures, 0

    def interval_measures(self, target, gold, ev):
        return self.measures


def test_a_measure_that_is_not_the_summary_is_an_error():
    f = Measure(mean_of_first, target=as_sets({"f": [1.0, 1.0]}), model=as_sets({"f": [0.0, 1.0]}), gold_constant=0.0)
    u = Measure(mean_of_first, target=as_sets({"u": [1.0, 1.0]}), model=as_sets({"u": [1.0, 0.5]}))
    right = {"forget_efficacy": 0.5, "retain_performance": 0.75, "mia_auc": float("nan")}
    assert _Fake((f, u, None, None)).summary_intervals({}, None, {}, right)["ci"]["forget_efficacy"] == [0.0, 1.0]
    with pytest.raises(RuntimeError, match="forget_efficacy"):
        _Fake((f, u, None, None)).summary_intervals({}, None, {}, {**right, "forget_efficacy": 0.4})
    empty = Measure(mean_of_first, target=as_sets({"u": []}), model=as_sets({"u": []}))
    assert _Fake((f, empty, None, None)).summary_intervals({}, None, {}, right) is None


def _cell(method, eff, ci, mia_auc=0.5, mia_ci=(0.4, 0.6)):
    return {"benchmark": "tofu", "split": "forget01", "method": method, "metrics": {},
            "summary": {"forget_efficacy": eff, "retain_performance": 0.9, "mia_auc": mia_auc},
            "intervals": {"ci": {"forget_efficacy": list(ci), "retain_performance": [0.85, 0.95], "mia_auc": list(mia_ci)}}}


def test_tables_mark_the_best_and_the_values_not_separable_from_it():
    rows = [_cell("npo", 0.9, (0.8, 1.0), 0.7, (0.65, 0.75)), _cell("ga", 0.85, (0.7, 0.95), 0.52, (0.45, 0.6)),
            _cell("finetune", 0.1, (0.0, 0.2), 0.9, (0.85, 0.95)), _cell("retrain", 1.0, (1.0, 1.0), 0.5, (0.45, 0.55))]
    eff = best_and_ties(rows, "forget_efficacy")
    assert eff == {"npo": "*", "ga": "~"}  # finetune's interval is apart from npo's; the gold is never marked
    assert best_and_ties(rows, "mia_auc") == {"ga": "*"}  # closest to the gold's 0.5; the others' intervals are apart
    md = to_markdown(rows)
    assert "| npo | 0.900 [0.80, 1.00]* |" in md and "| ga | 0.850 [0.70, 0.95]~ |" in md
    assert "| finetune | 0.100 [0.00, 0.20] |" in md and "bootstrap 95% interval" in md
    tex = to_latex(rows)
    assert r"0.900 [0.80, 1.00]$^{*}$" in tex and r"$^{\sim}$" in tex
    # without intervals (cells of a benchmark that gives none) the tables print the bare values, unmarked
    bare = [{**c, "intervals": None} for c in rows]
    assert best_and_ties(bare, "forget_efficacy") == {} and "| npo | 0.900 |" in to_markdown(bare)


def test_overlaps():
    assert overlaps([0, 1], [1, 2]) and not overlaps([0, 0.5], [0.6, 1]) and overlaps(None, [0, 1]) is None
