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


# ---------------------------------------------------------------- `unlearn bench --workers N`: the order of the cells
def _finish(loads, costs, assign):
    finish = list(loads)
    for c, k in zip(costs, assign):
        finish[k] += c
    return max(finish)


def test_the_plan_makes_the_workers_finish_together():
    """Five cells on two workers, like the dry run's (costs in a plain cell's time: 1.6, 1.25 and three of 1):
    longest-first ends at 3.25, the plan at 3.0 (the two long ones on one worker, the three others on the other)."""
    from unlearn.executors import plan_assignment

    costs = [1.0, 1.0, 1.0, 1.6, 1.25]  # e.g. finetune, grad_ascent, dsu, iwap, trou
    assign = plan_assignment([0.0, 0.0], costs)
    assert _finish([0.0, 0.0], costs, assign) == 3.0
    assert assign[3] == assign[4] != assign[0] == assign[1] == assign[2]
    # work already committed counts: a worker 2 units into its queue gets the short list
    assign = plan_assignment([2.0, 0.0], [1.0, 1.0, 2.0])
    assert _finish([2.0, 0.0], [1.0, 1.0, 2.0], assign) == 3.0 and assign[2] == 1
    # many tasks: longest first to the least loaded, every task placed
    costs = [float(i % 5 + 1) for i in range(20)]
    assign = plan_assignment([0.0, 0.0], costs)
    assert len(assign) == 20 and _finish([0.0, 0.0], costs, assign) <= sum(costs) / 2 + max(costs)


def test_a_free_worker_starts_the_task_the_plan_gives_it():
    from unlearn.executors import pick_next

    costs = [1.0, 1.0, 1.0, 1.6, 1.25]
    # the other worker's end unknown (a reference evaluation): this one takes the longer list, a plain cell first
    assert pick_next([0.0], costs) == 0
    # the other worker is one plain cell in: this one takes iwap, the longest of its list (iwap, trou)
    assert pick_next([1.0], costs[1:]) == 2
    # the other worker almost done with iwap: finetune and dsu here (2.0), trou there (0.9 + 1.25)
    assert pick_next([0.9], [1.0, 1.0, 1.25]) == 0
    # the other worker has 2 units left: the long task here now, then one short one (3 and 3, not 2 and 4)
    assert pick_next([2.0], [1.0, 1.0, 2.0]) == 2
    assert pick_next([0.0, 0.0], [0.0]) == 0  # the gold's row (no work) still runs


def test_cell_costs_come_from_the_tier():
    from unlearn.tiers import run_tier

    assert run_tier("smollm2-135m", True, None).cell_cost("iwap") > run_tier("smollm2-135m", True, None).cell_cost("dsu")
    assert run_tier("tiny-qwen3", False, None).cell_cost("retrain") == 0.0  # the gold's row: no unlearning
    assert run_tier("tiny-qwen3", False, None).cell_cost("npo") == 1.0
