"""TOFU cells: every registered method x forget01/05/10 unlearns, is evaluated, and must meet its row
of ``expectations.TOFU_EXPECTATIONS``; the rounded metrics are snapshotted in snapshots/."""

from __future__ import annotations

from pathlib import Path

import pytest
from evals.cells import cell_for, check_expectation, check_sanity, session_cells, skip_unless_default_tier
from unlearn.gate.snapshots import snapshots_of
from evals.expectations import expectation_rows, DEFAULT_EXPECTATIONS, KNOWN_FAILURES, ROBUSTNESS_EXPECTATIONS, TOFU_EXPECTATIONS
from unlearn.benchmarks import TofuBenchmark
from unlearn.methods import method_names

ROOT = Path(__file__).resolve().parent.parent
SPLITS = TofuBenchmark.splits
pytestmark = pytest.mark.tofu


@pytest.fixture(scope="session")
def cell_cache():
    yield from session_cells()


@pytest.fixture
def cell(request, tofu_bench, cell_cache):
    """Each (method, split) runs once per session, shared by its threshold and snapshot tests."""
    return cell_for(request, tofu_bench, cell_cache)


def _grid():
    out = []
    for split in SPLITS:
        for method in method_names():
            out.append(pytest.param((method, split), id=f"{method}-{split}"))
    return out


def _threshold_grid():
    """One test per (method, split, threshold): a known failure of one threshold is a strict xfail of that
    threshold alone; the cell's other thresholds are still asserted."""
    return [pytest.param((method, split), (name, d, t), id=f"{method}-{split}-{name}")
            for split in SPLITS for method in method_names() for name, d, t in expectation_rows(TOFU_EXPECTATIONS, method, DEFAULT_EXPECTATIONS)]


@pytest.mark.parametrize("cell,threshold", _threshold_grid(), indirect=["cell"])
def test_tofu_expectations(cell, threshold, request):
    check_expectation(cell, threshold, KNOWN_FAILURES, request)


@pytest.mark.parametrize("cell", _grid(), indirect=True)
def test_tofu_snapshot(cell, snapshot, request):
    skip_unless_default_tier(request, cell)
    assert TofuBenchmark.metric_snapshot(cell) == snapshot(extension_class=snapshots_of("tofu", cell["split"], cell["method"]))


@pytest.mark.parametrize("split", SPLITS)
def test_target_answers_the_forget_authors_far_better_than_gold(tofu_bench, split, request):
    """Sanity: the target still knows the forget authors (forget ROUGE-L recall at least 0.2 above the gold's)."""
    def measure(bench):
        t = bench.reference_eval("target", split)["aggregates"]["forget_rouge"]
        g = bench.reference_eval("gold", split)["aggregates"]["forget_rouge"]
        return t > g + 0.2, f"forget ROUGE: target {t:.3f}, gold {g:.3f} (want a margin > 0.2)"

    check_sanity(request, tofu_bench, split, "rouge_margin", measure, KNOWN_FAILURES)


@pytest.mark.parametrize("split", SPLITS)
def test_target_is_far_from_gold(tofu_bench, split, request):
    """Sanity: FQ(target vs gold) is far below 0.05 (the KS test tells the target from the gold)."""
    from unlearn.benchmarks.tofu.metrics import forget_quality, forget_truth_ratios

    def measure(bench):
        target, gold = bench.reference_eval("target", split), bench.reference_eval("gold", split)
        fq = forget_quality(forget_truth_ratios(target["logs"]["forget"]), forget_truth_ratios(gold["logs"]["forget"]))
        return fq < 0.01, f"FQ(target vs gold) = {fq:.3g} (want < 0.01)"

    check_sanity(request, tofu_bench, split, "fq", measure, KNOWN_FAILURES)


@pytest.mark.robustness
@pytest.mark.parametrize("split", SPLITS)
def test_relearning_control_learns_some_but_not_all(tofu_bench, split):
    """The attack on the gold model (the control): k forget rows teach a model that never saw the forget
    authors part of the other rows' answers; none (0) or all (1) would mean the budget measures nothing."""
    control = tofu_bench.relearn_control(split)
    assert 0.05 < control["relearn_control"] < 0.95, control


def _robust_grid():
    return [pytest.param((method, split), (name, d, t), id=f"{method}-{split}-{name}")
            for split in SPLITS for method in method_names() for name, d, t in ROBUSTNESS_EXPECTATIONS.get(method, [])]


@pytest.mark.robustness
@pytest.mark.parametrize("cell,threshold", _robust_grid(), indirect=["cell"])
def test_tofu_robustness(cell, threshold, request):
    assert {"relearn_recovery", "relearn_control", "regen_leak"} <= set(cell["summary"])
    check_expectation(cell, threshold, KNOWN_FAILURES, request)
