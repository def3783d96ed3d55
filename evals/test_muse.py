"""MUSE cells: every registered method x news / news-scal / news-sust unlearns, is evaluated on the six
criteria, and must meet its row of ``expectations.MUSE_EXPECTATIONS``; rounded metrics are snapshotted.
The tiny tier runs on the synthetic (fictitious) news corpus; any other --model reads real MUSE-News from
the data folder (``real_data``, ``slow``)."""

from __future__ import annotations

import pytest

from evals.cells import cell_for, check_expectation, session_cells, skip_unless_default_tier
from evals.expectations import expectation_rows, DEFAULT_EXPECTATIONS, MUSE_EXPECTATIONS, MUSE_KNOWN_FAILURES
from evals.test_tofu import TopLevelSnapshots
from unlearn.benchmarks.muse.benchmark import MuseBenchmark, metric_snapshot
from unlearn.benchmarks.muse.metrics import privleak
from unlearn.methods import method_names

SPLITS = MuseBenchmark.splits
pytestmark = pytest.mark.muse


@pytest.fixture(scope="session")
def muse_cells():
    yield from session_cells()


@pytest.fixture
def muse_cell(request, muse_bench, muse_cells):
    return cell_for(request, muse_bench, muse_cells)


def _threshold_grid():
    return [pytest.param((method, split), (name, d, t), id=f"{method}-{split}-{name}")
            for split in SPLITS for method in method_names() for name, d, t in expectation_rows(MUSE_EXPECTATIONS, method, DEFAULT_EXPECTATIONS)]


@pytest.mark.parametrize("muse_cell,threshold", _threshold_grid(), indirect=["muse_cell"])
def test_muse_expectations(muse_cell, threshold, request):
    check_expectation(muse_cell, threshold, MUSE_KNOWN_FAILURES, request)


@pytest.mark.parametrize("muse_cell", [pytest.param((m, s), id=f"{m}-{s}") for s in SPLITS for m in method_names()],
                         indirect=True)
def test_muse_snapshot(muse_cell, snapshot, request):
    skip_unless_default_tier(request, muse_cell)
    assert metric_snapshot(muse_cell) == snapshot(extension_class=TopLevelSnapshots)


@pytest.mark.parametrize("check_name", ["privleak", "verbmem_margin", "knowmem"])
def test_target_memorised_what_gold_never_saw(muse_bench, check_name, request):
    """Sanity: the target's PrivLeak is strongly negative (<= -50), its VerbMem well above the
    gold's (by >= 0.3), and it knows the forget facts better than the gold; otherwise nothing can be unlearned."""
    if ("target", "news", check_name) in MUSE_KNOWN_FAILURES:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=MUSE_KNOWN_FAILURES["target", "news", check_name]))
    target, gold = muse_bench.reference_eval("target"), muse_bench.reference_eval("gold")
    if check_name == "privleak":
        leak = privleak(target["privleak_auc"], gold["privleak_auc"])
        assert leak <= -50, f"target PrivLeak {leak:.1f} (want <= -50)"
    elif check_name == "verbmem_margin":
        assert target["verbmem_f"] >= gold["verbmem_f"] + 0.3, (target["verbmem_f"], gold["verbmem_f"])
    else:
        assert target["knowmem_f"] > gold["knowmem_f"], (target["knowmem_f"], gold["knowmem_f"])


@pytest.mark.parametrize("muse_cell", [pytest.param(("retrain", s), id=f"retrain-{s}") for s in SPLITS], indirect=True)
def test_gold_row_privleak_is_zero(muse_cell):
    """The retrain row's PrivLeak is measured against itself (0 by definition): a non-zero value means the
    row and its reference are different models."""
    steps = muse_cell["metrics"].get("steps", [muse_cell])
    assert [s["metrics"]["privleak"] for s in steps] == [0.0] * len(steps)
