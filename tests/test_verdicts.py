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
