"""TOFU and MIA metrics: conformance with the published logs, hand values and properties."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn.metrics import mia
from unlearn.benchmarks.tofu.metrics import (aggregate, extraction_strength, forget_quality, model_utility, normalised_prob,
                                  read_log_dir, rouge_l_recall, truth_ratio, truth_ratio_score)

PUBLISHED_FULL = {"model_utility": 0.6227, "forget_truth_ratio": 0.5160, "forget_rouge": 0.9854, "forget_prob": 0.9909,
                  "retain_rouge": 0.9857, "retain_prob": 0.9895, "retain_truth_ratio": 0.4747}
PUBLISHED_RETAIN90 = {"model_utility": 0.6137, "forget_truth_ratio": 0.6740, "forget_rouge": 0.4082, "forget_prob": 0.1476}


@pytest.fixture(scope="module")
def ref_logs(data_dir):
    root = Path(data_dir or "") / "tofu-reference-logs"
    if not data_dir or not root.is_dir():
        pytest.skip("TOFU reference logs not found: set UNLEARN_DATA_DIR (or --data-dir) to a folder with tofu-reference-logs/")
    return read_log_dir(root / "llama2-7b_full_wd0.01"), read_log_dir(root / "llama2-7b_retain90_wd0.01"), root


@pytest.mark.real_data
def test_published_tofu_aggregates_are_reproduced(ref_logs):
    full, retain90, _ = ref_logs
    got = aggregate(full, retain90)
    for k, v in PUBLISHED_FULL.items():
        assert round(got[k], 4) == v, k
    assert float(f"{got['forget_quality']:.3g}") == 1.83e-21
    got90 = aggregate(retain90, retain90)
    for k, v in PUBLISHED_RETAIN90.items():
        assert round(got90[k], 4) == v, k
    assert got90["forget_quality"] == 1.0


@pytest.mark.real_data
def test_tofu_aggregate_command(ref_logs):
    _, _, root = ref_logs
    out = subprocess.run([sys.executable, "-m", "unlearn", "tofu-aggregate", str(root / "llama2-7b_full_wd0.01"),
                          "--retain", str(root / "llama2-7b_retain90_wd0.01"), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert round(got["model_utility"], 4) == 0.6227 and float(f"{got['forget_quality']:.3g}") == 1.83e-21


def test_truth_ratio_by_hand():
    """l(para) = 1, perturbed l = (2, 4): R = exp(1 - 3) = e^-2; forget score min(R, 1/R) = e^-2,
    retain score max(0, 1 - R) = 1 - e^-2."""
    R = truth_ratio(np.array([1.0]), np.array([[2.0, 4.0]]))
    assert R[0] == pytest.approx(np.exp(-2))
    assert truth_ratio_score(R, forget=True) == pytest.approx(np.exp(-2))
    assert truth_ratio_score(R, forget=False) == pytest.approx(1 - np.exp(-2))


def test_normalised_prob_by_hand():
    """P(a) = e^-1, perturbed e^-1 and e^-1 (k = 2): 1/3."""
    assert normalised_prob(np.array([1.0]), np.array([[1.0, 1.0]]))[0] == pytest.approx(1 / 3)


def test_model_utility_is_a_harmonic_mean_and_zero_with_a_zero_term():
    assert model_utility([0.5] * 9) == pytest.approx(0.5)
    assert model_utility([1, 1, 1, 1, 1, 1, 1, 1, 0.5]) == pytest.approx(9 / 10)
    assert model_utility([0.9] * 8 + [0.0]) == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.01, 10), min_size=1, max_size=10), st.lists(st.floats(0.01, 10), min_size=3, max_size=3))
def test_truth_ratio_scores_in_unit_interval(para, pert):
    R = truth_ratio(np.array(para), np.tile(np.array(pert), (len(para), 1)))
    for forget in (True, False):
        assert 0.0 <= truth_ratio_score(R, forget) <= 1.0


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.01, 100), min_size=2, max_size=40))
def test_ks_pvalue_is_one_for_identical_samples(values):
    assert forget_quality(np.array(values), np.array(values)) == pytest.approx(1.0)


def test_forget_quality_separates_shifted_truth_ratios_and_not_resampled_ones():
    """FQ is a p-value with power: two draws of the same truth-ratio distribution (a retrain against
    another retrain) are not told apart, a model whose ratios are all twice the gold's is (both n = 40,
    TOFU forget01's size). Catches FQ returning the KS statistic, a one-sided test, or R compared with 1/R."""
    rng = np.random.default_rng(0)
    gold, retrain, other = (np.exp(rng.normal(-0.7, 0.5, 40)) for _ in range(3))
    assert forget_quality(retrain, gold) > 0.05 and forget_quality(other, gold) > 0.05
    assert forget_quality(2 * retrain, gold) < 1e-3 and forget_quality(retrain / 2, gold) < 1e-3


def test_rouge_l_recall_uses_stemming():
    assert rouge_l_recall(["He writes novels"], ["He wrote novel"])[0] == pytest.approx(2 / 3)
    assert rouge_l_recall(["the cats ran"], ["the cat"])[0] == 1.0


def test_extraction_strength_by_hand():
    """hits (F, T, T, T): the suffix after 1 token is extracted: ES = 1 - 1/4."""
    es = extraction_strength([np.array([False, True, True, True]), np.array([True, True, False]), np.array([True] * 3)])
    assert es.tolist() == [0.75, 0.0, 1.0]


def test_min_k_scores_by_hand():
    lp = [np.array([-1.0, -5.0, -2.0, -4.0, -3.0])]
    assert mia.min_k_score(lp, k=0.4)[0] == pytest.approx(-4.5)  # floor(0.4*5) = 2 lowest: -5, -4
    z = mia.min_k_plus_plus_score(lp, [np.zeros(5)], [np.full(5, 2.0)], k=0.2)
    assert z[0] == pytest.approx(-2.5)


def test_auc_orientation():
    assert mia.auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert mia.auc(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.5
    with pytest.raises(ValueError, match="not finite"):
        mia.auc(np.array([np.nan]), np.array([1.0]))
