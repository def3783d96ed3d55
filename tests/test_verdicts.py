"""The formulas behind the verdicts, worked by hand: the summary columns, and a conformance diff that cannot
be fooled by a NaN."""

import math

import pytest

from unlearn.benchmarks.base import summary_columns
from unlearn.eval_job import diff_open_unlearning


def test_summary_columns_worked_by_hand():
    # target forgets nothing yet (ROUGE 0.9), the gold never knew (0.3), the model sits at 0.45:
    # efficacy = (0.9 - 0.45) / (0.9 - 0.3) = 0.75; utility 0.6 of the target's 0.8 -> 0.75; MIA passes through
    s = summary_columns(m_target=0.9, m_gold=0.3, m_model=0.45, u_target=0.8, u_model=0.6, mia_auc=0.62)
    assert s == pytest.approx({"forget_efficacy": 0.75, "retain_performance": 0.75, "mia_auc": 0.62})
    # below the gold (over-forgetting) clips to 1, above the target clips to 0; utility above the target is kept
    assert summary_columns(0.9, 0.3, 0.1, 0.8, 0.88, 0.5)["forget_efficacy"] == 1.0
    assert summary_columns(0.9, 0.3, 0.95, 0.8, 0.88, 0.5)["forget_efficacy"] == 0.0
    assert summary_columns(0.9, 0.3, 0.95, 0.8, 0.88, 0.5)["retain_performance"] == pytest.approx(1.1)
    # no gap between target and gold, or a target with no utility: undefined, not a number that looks fine
    assert math.isnan(summary_columns(0.5, 0.5, 0.2, 0.8, 0.8, 0.5)["forget_efficacy"])
    assert math.isnan(summary_columns(0.9, 0.3, 0.2, 0.0, 0.8, 0.5)["retain_performance"])


def _entry(values: dict) -> dict:
    return {"value_by_index": {row: {"prob": v} for row, v in values.items()}}


def test_conformance_diff_reports_the_worst_row():
    report = diff_open_unlearning({"forget_Q_A_Prob": _entry({"0": 0.5, "1": 0.2, "2": 0.9})},
                                  {"forget_Q_A_Prob": _entry({"0": 0.5, "1": 0.25, "3": 0.1})})
    d = report["values"]["forget_Q_A_Prob.prob"]
    assert d["row"] == "1" and d["max_abs_diff"] == pytest.approx(0.05) and d["rows"] == 2  # row 2/3: one side only


@pytest.mark.parametrize("side", ["ours", "reference"])
def test_conformance_diff_a_nan_is_the_worst_difference(side):
    """A NaN on either side must not hide behind max() (every comparison with NaN is False)."""
    ours, ref = {"0": 0.5, "1": float("nan"), "2": 0.9}, {"0": 0.5, "1": 0.2, "2": 0.9}
    if side == "reference":
        ours, ref = ref, ours
    d = diff_open_unlearning({"m": _entry(ours)}, {"m": _entry(ref)})["values"]["m.prob"]
    assert d["row"] == "1" and math.isnan(d["max_abs_diff"]) and math.isnan(d["max_scaled_diff"])
    assert not d["max_abs_diff"] <= 1e-3  # what the conformance test asserts


# ---------------------------------------------------------------- unlearn/gate/verdicts.py: pass, fail, inconclusive
from unlearn.gate.verdicts import (FAIL, INCONCLUSIVE, PASS, RETAIN_FLOOR, MissingValue, combine, decide,  # noqa: E402
                            verdict)


def _cell(method="npo", summary=None, metrics=None, ci=None, membership=None):
    return {"method": method, "split": "forget01", "summary": summary or {}, "metrics": metrics or {},
            "intervals": {"ci": ci or {}, "membership": membership}}


@pytest.mark.parametrize("interval,outcome", [([0.55, 0.9], PASS), ([0.1, 0.45], FAIL), ([0.4, 0.7], INCONCLUSIVE),
                                              (None, PASS), ([0.5, 0.5], PASS)])
def test_an_interval_decides_the_row(interval, outcome):
    assert decide(0.6, interval, ">=", 0.5) == outcome
    flipped = {PASS: FAIL, FAIL: PASS, INCONCLUSIVE: INCONCLUSIVE}[outcome] if interval != [0.5, 0.5] else PASS
    assert decide(0.6, interval, "<=", 0.5) == flipped


@pytest.mark.parametrize("bad", [None, float("nan")])
def test_a_missing_value_is_an_error_not_a_verdict(bad):
    """Planted bug caught: the old check let None/NaN fail inside the strict xfail (an expected failure)."""
    with pytest.raises(MissingValue):
        verdict(_cell(summary={"forget_efficacy": bad, "retain_performance": 0.9}), "forget_efficacy", ">=", 0.3)
    with pytest.raises(MissingValue):  # the floor's own value too
        verdict(_cell(summary={"forget_efficacy": 0.9, "retain_performance": bad}), "forget_efficacy", ">=", 0.3)
    assert issubclass(MissingValue, AssertionError)  # still a failure where no xfail applies


def test_a_destroyed_model_passes_nothing():
    """grad_ascent's forget10 row: efficacy 1.0 at retain 0.0 passed before the floor."""
    cell = _cell("grad_ascent", summary={"forget_efficacy": 1.0, "retain_performance": 0.0, "mia_auc": 0.5},
                 ci={"forget_efficacy": [1.0, 1.0], "retain_performance": [0.0, 0.0]})
    v = verdict(cell, "forget_efficacy", ">=", 0.5)
    assert v.outcome == FAIL and f"floor {RETAIN_FLOOR}" in v.why
    cell["summary"]["retain_performance"], cell["intervals"]["ci"]["retain_performance"] = 0.6, [0.3, 0.9]
    assert verdict(cell, "forget_efficacy", ">=", 0.5).outcome == INCONCLUSIVE  # the floor undecided
    cell["intervals"]["ci"]["retain_performance"] = [0.55, 0.7]
    assert verdict(cell, "forget_efficacy", ">=", 0.5).outcome == PASS
    # the gold row has no floor (it is the reference), and a retain row is not held to itself twice
    gold = _cell("retrain", summary={"retain_performance": 0.0}, metrics={"forget_rouge": 0.2})
    assert verdict(gold, "forget_rouge", "<=", 0.85).outcome == PASS


def test_membership_rows_need_a_calibrated_gold_and_enough_units():
    summary = {"retain_performance": 1.0}
    few = _cell(summary=summary, metrics={"mia_gap": 0.02}, membership={"units": (2, 2), "mia_gap": None})
    v = verdict(few, "mia_gap", "<=", 0.1)
    assert v.outcome == INCONCLUSIVE and "(2, 2)" in v.why
    uncalibrated = _cell(summary=summary, metrics={"mia_gap": 0.02},
                         membership={"units": (6, 6), "mia_gap": [0.0, 0.05], "gold_mia_offset": [0.02, 0.3]})
    assert verdict(uncalibrated, "mia_gap", "<=", 0.1).outcome == INCONCLUSIVE
    calibrated = _cell(summary=summary, metrics={"mia_gap": 0.02},
                       membership={"units": (6, 6), "mia_gap": [0.0, 0.05], "gold_mia_offset": [0.0, 0.08]})
    assert verdict(calibrated, "mia_gap", "<=", 0.1).outcome == PASS
    calibrated["intervals"]["membership"]["mia_gap"] = [0.2, 0.4]
    assert verdict(calibrated, "mia_gap", "<=", 0.1).outcome == FAIL
    # the gold's own row reads its own offset interval, with no gold gate
    gold = _cell("retrain", metrics={"mia_offset": 0.3}, membership={"units": (6, 6), "mia_offset": [0.2, 0.4]})
    assert verdict(gold, "mia_offset", "<=", 0.1).outcome == FAIL


def test_seeds_that_disagree_make_the_row_inconclusive():
    from unlearn.gate.verdicts import Verdict

    p, f = Verdict(PASS, 0.9, None, "a"), Verdict(FAIL, 0.1, None, "b")
    assert combine([p, p, p])[0] == PASS and combine([f, f])[0] == FAIL
    outcome, why = combine([p, f, p])
    assert outcome == INCONCLUSIVE and "seed 1: fail" in why


def test_membership_intervals_resample_units_not_rows():
    """Rows of one unit share its offset: the unit bootstrap is wider than a row bootstrap would be, and the
    model and the gold take the same draw (identical scores: a gap of exactly 0)."""
    import numpy as np

    from unlearn.intervals import cluster_ids, membership_intervals

    rng = np.random.default_rng(1)
    unit = lambda: np.repeat(rng.normal(0, 2, 8), 20) + rng.normal(0, 0.1, 160)  # noqa: E731
    m, n = unit(), unit()
    out = membership_intervals(m, n, cluster_ids(160, 20), cluster_ids(160, 20), m, n)
    assert out["units"] == (8, 8) and out["mia_gap"] == [0.0, 0.0]
    lo, hi = out["mia_auc"]
    assert hi - lo > 0.3  # eight units a side: the AUC is barely known
    rows = membership_intervals(m, n, np.arange(160), np.arange(160))
    assert rows["mia_auc"][1] - rows["mia_auc"][0] < hi - lo
    assert membership_intervals(m[:80], n[:80], cluster_ids(80, 20), cluster_ids(80, 20))["mia_auc"] is None
