"""Cell fixtures' shared parts: each (method, split) runs once per session and is shared by its threshold and
snapshot tests; with UNLEARN_EVAL_DUMP=FILE the session's summaries and metrics are written there at the end
(to read measured values off one run, e.g. for an expectations table)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unlearn.methods import parse_overrides

DUMPED = ("method", "split", "summary", "metrics", "references", "cost")


def session_cells():
    """Body of a session-scoped fixture: yields the cell store, dumps it at the end when asked to."""
    cells: dict = {}
    yield cells
    dump = os.environ.get("UNLEARN_EVAL_DUMP")
    if dump and cells:
        Path(dump).write_text(json.dumps([{k: c[k] for k in DUMPED} for c in cells.values()], indent=1, allow_nan=True))


def cell_for(request, bench, cells: dict) -> dict:
    """The cell ``request.param`` = (method, split) of ``bench``, run once per session (``--set`` applied)."""
    method, split = request.param
    if (method, split) not in cells:
        cells[method, split] = bench.run_cell(method, split, parse_overrides(request.config.getoption("--set")))
    return cells[method, split]


def check_expectation(cell: dict, threshold: tuple, known_failures: dict, request) -> None:
    """Assert one (name, direction, bound) row of an expectations table on ``cell`` (summary first, then metrics);
    a row listed in ``known_failures`` runs as a strict xfail with the measured value as its reason."""
    from evals.expectations import check

    name, direction, bound = threshold
    key = (cell["method"], cell["split"], name)
    if key in known_failures:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=known_failures[key]))
    value = cell["summary"].get(name, cell["metrics"].get(name))
    assert check(value, direction, bound), f"{cell['method']} on {cell['split']}: {name}={value:.4g} (want {direction} {bound})"


def skip_unless_default_tier(request, cell: dict) -> None:
    """Snapshots pin the default tier: tiny-qwen3 on the CPU in fp32 with default hyperparameters."""
    opt = request.config.getoption
    if opt("--model") != "tiny-qwen3" or opt("--set") or opt("--max-steps") is not None \
            or opt("--precision") == "bf16" or cell["device"] != "cpu":
        pytest.skip("snapshots pin the default tier (tiny-qwen3 on the CPU in fp32, default hyperparameters)")
