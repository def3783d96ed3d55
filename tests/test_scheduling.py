"""`pytest -n 2 --dist loadgroup`: the tests that read one cell are one xdist scope (evals/scheduling.py)."""

import json

from evals import test_muse, test_tofu
from evals.scheduling import CellScheduling, cell_group


def test_cell_tests_share_their_cells_group():
    assert cell_group("evals/test_tofu.py::test_tofu_expectations[grad_ascent-forget05-forget_efficacy]") == "tofu:grad_ascent:forget05"
    assert cell_group("evals/test_tofu.py::test_tofu_snapshot[grad_ascent-forget05]") == "tofu:grad_ascent:forget05"
    assert cell_group("evals/test_tofu.py::test_tofu_robustness[grad_ascent-forget05-relearn_excess]") == "tofu:grad_ascent:forget05"
    # MUSE: a method's news, news-scal and news-sust cells share its first step
    assert cell_group("evals/test_muse.py::test_muse_expectations[npo-news-scal-forget_efficacy]") == "muse:npo"
    assert cell_group("evals/test_muse.py::test_muse_snapshot[npo-news]") == "muse:npo"
    assert cell_group("evals/test_muse.py::test_gold_row_privleak_is_zero[retrain-news-sust]") == "muse:retrain"
    assert cell_group("evals/test_wmdp.py::test_wmdp_snapshot[rmu-synthetic]") == "wmdp:rmu:synthetic"
    assert cell_group("evals/test_wmdp.py::test_gold_row_is_the_gold_model[retrain-synthetic]") == "wmdp:retrain:synthetic"


def test_tests_that_read_no_cell_are_scheduled_alone():
    for nodeid in ("evals/test_tofu.py::test_target_is_far_from_gold[forget01]",
                   "evals/test_tofu.py::test_relearning_control_learns_some_but_not_all[forget10]",
                   "evals/test_muse.py::test_target_memorised_what_gold_never_saw[privleak]",
                   "tests/test_bench.py::test_like_a_cell[dsu-forget01]"):
        assert cell_group(nodeid) is None
        assert CellScheduling._split_scope(None, nodeid) == nodeid
    assert CellScheduling._split_scope(None, "evals/x.py::t[a]@mygroup") == "mygroup"  # xdist's own marker


def test_modules_sharing_one_run_stay_on_one_worker():
    for test in ("test_killed_run_resumes_to_identical_results", "test_results_schema_and_outputs"):
        assert CellScheduling._split_scope(None, f"evals/test_main_job.py::{test}") == "evals/test_main_job.py"
    for test in ("test_ray_grid_equals_the_local_one", "test_worker_killed_mid_cell_loses_nothing"):
        assert cell_group(f"evals/test_executors.py::{test}") == "evals/test_executors.py"
    for test in ("test_verbmem_per_prompt", "test_knowmem_forget_per_question"):  # one SmolLM2 run for the module
        assert cell_group(f"evals/test_muse_conformance.py::{test}") == "evals/test_muse_conformance.py"


def test_every_grid_id_maps_to_its_cell():
    for p in test_tofu._threshold_grid() + test_tofu._grid() + test_tofu._robust_grid():
        method, split = p.values[0]
        assert cell_group(f"evals/test_tofu.py::test_tofu_expectations[{p.id}]") == f"tofu:{method}:{split}"
    for p in test_muse._threshold_grid():
        method, _ = p.values[0]
        assert cell_group(f"evals/test_muse.py::test_muse_expectations[{p.id}]") == f"muse:{method}"


def test_eval_dump_keeps_every_benchmarks_cells(tmp_path, monkeypatch):
    """UNLEARN_EVAL_DUMP: each benchmark's cell fixture tears down on its own; the file holds the cells of all of
    them (a dump that kept only the last benchmark's lost the others), one file per xdist worker."""
    from evals import cells as cells_module

    monkeypatch.setattr(cells_module, "_DUMP_ROWS", [])
    monkeypatch.setenv("UNLEARN_EVAL_DUMP", str(tmp_path / "dump.json"))
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")

    def cell(benchmark, method, split):
        return {"benchmark": benchmark, "method": method, "split": split, "summary": {"forget_efficacy": 1.0},
                "metrics": {}, "references": {}, "cost": {}}

    for benchmark, split in (("tofu", "forget01"), ("wmdp", "synthetic")):
        fixture = cells_module.session_cells()
        store = next(fixture)
        store["npo", split] = cell(benchmark, "npo", split)
        next(fixture, None)  # the fixture's teardown writes the dump
    rows = json.loads((tmp_path / "dump.json.gw1").read_text())
    assert [(r["benchmark"], r["method"], r["split"]) for r in rows] == [("tofu", "npo", "forget01"), ("wmdp", "npo", "synthetic")]
    assert not (tmp_path / "dump.json").exists()
