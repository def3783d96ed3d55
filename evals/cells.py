"""Cell fixtures' shared parts: each (method, split) runs once per session and is shared by its threshold and
snapshot tests; with UNLEARN_EVAL_DUMP=FILE the session's summaries and metrics are written there at the end
(to read measured values off one run, e.g. for an expectations table): every benchmark's cells of the process,
and under pytest-xdist one file per worker, FILE.<worker> (gw0, gw1, ...)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from unlearn.methods import parse_overrides

DUMPED = ("benchmark", "method", "split", "summary", "metrics", "references", "cost")
_DUMP_ROWS: list = []  # the process's dumped cells so far, every benchmark's (each fixture's teardown adds its own)


def session_cells():
    """Body of a session-scoped fixture: yields the cell store, dumps it at the end when asked to."""
    cells: dict = {}
    yield cells
    dump = os.environ.get("UNLEARN_EVAL_DUMP")
    if dump and os.environ.get("PYTEST_XDIST_WORKER"):  # one file per worker: none overwrites another's cells
        dump = f"{dump}.{os.environ['PYTEST_XDIST_WORKER']}"
    if dump and cells:
        _DUMP_ROWS.extend({**{k: c[k] for k in DUMPED},
                           **({"seeds": [{k: s[k] for k in ("summary", "metrics")} for s in c["seed_cells"]]}
                              if c.get("seed_cells") else {})} for c in cells.values())
        Path(dump).write_text(json.dumps(_DUMP_ROWS, indent=1, allow_nan=True))


def cell_for(request, bench, cells: dict) -> dict:
    """The cell ``request.param`` = (method, split) of ``bench``, run once per session (``--set`` applied).
    With ``--seeds N`` (N > 1) the cell is also run with seeds 1..N-1, each on a benchmark of that seed (its
    own target and gold), under ``cell["seed_cells"]`` (seed 0 first): the expectation rows must hold on every
    seed; snapshots and the other tests read seed 0."""
    method, split = request.param
    if (method, split) not in cells:
        overrides = parse_overrides(request.config.getoption("--set"))
        cell = bench.run_cell(method, split, overrides)
        cell.setdefault("benchmark", bench.name)  # names the dump's rows (WMDP and unsafe share "synthetic")
        n = request.config.getoption("--seeds")
        if n > 1:
            from evals.conftest import bench_with_seed

            cell["seed_cells"] = [cell] + [bench_with_seed(request, bench.name, seed).run_cell(method, split, overrides)
                                           for seed in range(1, n)]
        cells[method, split] = cell
    return cells[method, split]


def check_expectation(cell: dict, threshold: tuple, known_failures: dict, request) -> None:
    """Assert one (name, direction, bound) row of an expectations table on ``cell`` (summary first, then metrics)
    and, with ``--seeds``, on every seed's cell (the worst seed decides); a row listed in ``known_failures`` runs
    as a strict xfail with the measured value as its reason."""
    from evals.expectations import check

    name, direction, bound = threshold
    key = (cell["method"], cell["split"], name)
    if key in known_failures:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=known_failures[key]))
    values = [c["summary"].get(name, c["metrics"].get(name)) for c in cell.get("seed_cells") or [cell]]
    bad = [(seed, v) for seed, v in enumerate(values) if not check(v, direction, bound)]
    where = lambda seed: f" (seed {seed} of {len(values)})" if len(values) > 1 else ""  # noqa: E731
    assert not bad, "; ".join(f"{cell['method']} on {cell['split']}{where(seed)}: {name}={v:.4g} (want {direction} {bound})"
                              for seed, v in bad)


def skip_unless_default_tier(request, cell: dict) -> None:
    """Snapshots pin the default tier: tiny-qwen3 on the CPU in fp32 with default hyperparameters."""
    opt = request.config.getoption
    if opt("--model") != "tiny-qwen3" or opt("--set") or opt("--max-steps") is not None \
            or opt("--precision") == "bf16" or cell["device"] != "cpu":
        pytest.skip("snapshots pin the default tier (tiny-qwen3 on the CPU in fp32, default hyperparameters)")
