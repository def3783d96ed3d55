"""Which tests must share a pytest-xdist worker: those that read one cell, so each cell unlearns and is
evaluated once per run. ``pytest -n 2 --dist loadgroup`` schedules by :func:`cell_group` (the root
``conftest.py`` installs :class:`CellScheduling`): a cell (method, split) of ``evals/test_<benchmark>.py`` is one
group; a benchmark whose cells share a run across splits (``cells_share_a_run``: MUSE, whose news, news-scal and
news-sust cells share a method's first step) groups by method. The group is read from the test id
(``test_x[method-split...]``), which the controller has without collecting; xdist's own ``xdist_group`` marker
cannot carry it under pytest 9 (xdist 3.8 renames node ids through an attribute pytest 9 no longer reads).
Larger groups are sent first (xdist's default reordering), tests that read no cell are scheduled one by one."""

from __future__ import annotations

import functools

from xdist.scheduler import LoadScopeScheduling

# modules whose tests share a module-scoped run (a bench subprocess, a nudged target): one worker, so it happens once
SHARED_RUN_FILES = ("evals/test_main_job.py", "evals/test_executors.py", "evals/test_perturbation.py",
                    "evals/test_muse_conformance.py")


@functools.cache
def bench_files() -> dict[str, str]:
    """``evals/test_<name>.py`` -> name, for every registered benchmark: the module of its cells' tests."""
    from unlearn.benchmarks import BENCHMARKS

    return {f"evals/test_{name}.py": name for name in BENCHMARKS.names()}


def cell_group(nodeid: str) -> str | None:
    """``tofu:method:split``, ``wmdp:method:split`` or ``muse:method`` for a test that reads a cell, the module for
    a module that shares one run between its tests, else None."""
    from unlearn.methods import method_names

    path, _, name = nodeid.partition("::")
    if path in SHARED_RUN_FILES:
        return path
    bench = bench_files().get(path)
    if bench is None or not name.endswith("]") or "[" not in name:
        return None
    parts = name[name.index("[") + 1: -1].split("-")
    if parts[0] not in method_names() or len(parts) < 2:  # e.g. test_target_is_far_from_gold[forget01]
        return None
    from unlearn.benchmarks import BENCHMARKS

    if BENCHMARKS.get(bench).cells_share_a_run:
        return f"{bench}:{parts[0]}"
    return f"{bench}:{parts[0]}:{parts[1]}"


class CellScheduling(LoadScopeScheduling):
    """xdist's scope scheduling with :func:`cell_group` as the scope (a node id with xdist's ``@group`` suffix
    keeps that group)."""

    def _split_scope(self, nodeid: str) -> str:
        if "@" in nodeid:
            return nodeid.rsplit("@", 1)[-1]
        return cell_group(nodeid) or nodeid
