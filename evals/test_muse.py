"""MUSE cells: every registered method x news / news-scal / news-sust unlearns, is evaluated on the six
criteria, and must meet its row of ``expectations.MUSE_EXPECTATIONS``; rounded metrics are snapshotted.
The tiny tier runs on the synthetic (fictitious) news corpus; any other --model reads real MUSE-News from
the data folder (``real_data``, ``slow``)."""

from __future__ import annotations

import pytest

from evals.cells import check_sanity, cell_for, check_expectation, session_cells, skip_unless_default_tier
from evals.expectations import expectation_rows, DEFAULT_EXPECTATIONS, MUSE_EXPECTATIONS, MUSE_KNOWN_FAILURES
from unlearn.gate.snapshots import snapshots_of
from unlearn.benchmarks.muse.benchmark import MuseBenchmark
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
    assert MuseBenchmark.metric_snapshot(muse_cell) == snapshot(extension_class=snapshots_of("muse", muse_cell["split"], muse_cell["method"]))


@pytest.mark.parametrize("check_name", ["privleak", "verbmem_margin", "knowmem"])
def test_target_memorised_what_gold_never_saw(muse_bench, check_name, request):
    """Sanity: the target's PrivLeak is strongly negative (<= -50), its VerbMem well above the
    gold's (by >= 0.3), and it knows the forget facts better than the gold; otherwise nothing can be unlearned."""
    def measure(bench):
        target, gold = bench.reference_eval("target"), bench.reference_eval("gold")
        if check_name == "privleak":
            leak = privleak(target["privleak_auc"], gold["privleak_auc"])
            return leak <= -50, f"target PrivLeak {leak:.1f} (want <= -50)"
        if check_name == "verbmem_margin":
            t, g = target["verbmem_f"], gold["verbmem_f"]
            return t >= g + 0.3, f"VerbMem target {t:.3g}, gold {g:.3g} (want a margin >= 0.3)"
        t, g = target["knowmem_f"], gold["knowmem_f"]
        return t > g, f"KnowMem forget target {t:.3g}, gold {g:.3g} (want the target's higher)"

    check_sanity(request, muse_bench, "news", check_name, measure, MUSE_KNOWN_FAILURES)


@pytest.fixture(scope="session")
def gold_evaluated_again(muse_bench):
    """gold_k (retrained without requests 1..k) evaluated from its model folder here, not read from the cached
    reference evaluation the cells use; each gold once per session."""
    done: dict[int, dict] = {}

    def again(k: int) -> dict:
        if k not in done:
            done[k] = muse_bench.evaluate(muse_bench.load(muse_bench.gold_dir(k=k), adapters=False))
        return done[k]

    return again


@pytest.mark.parametrize("muse_cell", [pytest.param(("retrain", s), id=f"retrain-{s}") for s in SPLITS], indirect=True)
def test_gold_row_is_the_gold_model(muse_cell, muse_bench, gold_evaluated_again):
    """Each step of the retrain row is its gold's evaluation: the gold's folder evaluated again (gold_1, or gold_k
    where the profile retrains per step) gives the step's VerbMem, KnowMem and PrivLeak AUC, and gold_1's gives the
    row's gold references. (The row's own PrivLeak is measured against the cached reference it was read from: 0 by
    definition, so it is not checked.)"""
    names = ("verbmem_f", "knowmem_f", "knowmem_r", "privleak_auc")
    steps = muse_cell["metrics"].get("steps", [muse_cell])
    for k, step in enumerate(steps, start=1):
        kind = muse_bench.gold_kind(k)
        again = gold_evaluated_again(1 if kind == "gold" else int(kind.removeprefix("gold")))
        # the same computation on the same model: equal up to a GPU kernel's last bits (another model's differ more)
        assert {n: step["metrics"][n] for n in names} == pytest.approx({n: again[n] for n in names}, rel=1e-6), k
    gold = gold_evaluated_again(1)
    refs = muse_cell["references"]["gold"]
    assert refs == pytest.approx({"forget_measure": (gold["verbmem_f"] + gold["knowmem_f"]) / 2,
                                  **{n: gold[n] for n in ("verbmem_f", "knowmem_f", "knowmem_r")}}, rel=1e-6)
