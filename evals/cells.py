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

DUMPED = ("benchmark", "method", "split", "summary", "metrics", "references", "cost", "intervals")
SEED_DUMPED = ("summary", "metrics", "intervals", "per_question")  # each seed's cell: enough to recompute a verdict
_DUMP_ROWS: list = []  # the process's dumped cells so far, every benchmark's (each fixture's teardown adds its own)


def session_cells():
    """Body of a session-scoped fixture: yields the cell store, dumps it at the end when asked to."""
    cells: dict = {}
    yield cells
    dump = os.environ.get("UNLEARN_EVAL_DUMP")
    if dump and os.environ.get("PYTEST_XDIST_WORKER"):  # one file per worker: none overwrites another's cells
        dump = f"{dump}.{os.environ['PYTEST_XDIST_WORKER']}"
    if dump and cells:
        _DUMP_ROWS.extend({**{k: c.get(k) for k in DUMPED}, "per_question": c.get("per_question"),
                           **({"seeds": [{k: s.get(k) for k in SEED_DUMPED} for s in c["seed_cells"]]}
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
    """Decide one (name, direction, bound) row of an expectations table on ``cell`` (summary first, then metrics)
    by the rules of :mod:`unlearn.gate.verdicts`, on every seed's cell with ``--seeds``: a missing value fails at once;
    a row the tier declares undecided (``expectations.UNDECIDED``, default tier only) or whose interval straddles
    the bar is reported *inconclusive* (its own outcome: counted, never a pass nor a known failure); a row in
    ``known_failures`` runs as a strict xfail with its reason; anything else must pass."""

    name, direction, bound = threshold
    method, split = cell["method"], cell["split"]
    outcome, why, verdicts = row_outcome(cell, threshold, default_tier(request, cell))
    record_verdict(request, cell, name, direction, bound, outcome, why, verdicts)
    settle(request, outcome, f"{method} on {split}: {why}", (method, split, name), known_failures)


def row_outcome(cell: dict, threshold: tuple, default: bool = True) -> tuple[str, str, list]:
    """(outcome, why, each seed's Verdict) of one row on ``cell``; ``default``: the run is the default tier, whose
    declared undecided rows (``expectations.UNDECIDED``) are inconclusive whatever it measured. Raises
    ``MissingValue`` (an AssertionError) on a None or NaN value."""
    from evals.expectations import UNDECIDED
    from unlearn.gate.verdicts import INCONCLUSIVE, combine, verdict

    name, direction, bound = threshold
    verdicts = [verdict(c, name, direction, bound) for c in cell.get("seed_cells") or [cell]]
    outcome, why = combine(verdicts)
    declared = UNDECIDED.get((cell.get("benchmark"), cell["method"], cell["split"], name)) if default else None
    if declared:
        outcome, why = INCONCLUSIVE, f"{why}; the tier cannot decide this row: {declared}"
    return outcome, why, verdicts


def check_sanity(request, bench, split, check_name: str, measure, known_failures: dict) -> None:
    """A target/gold sanity row (``("target", split, check_name)``): ``measure(bench) -> (ok, text)`` on the session's
    benchmark and, with ``--seeds N``, on every seed's (each with its own target and gold): all ok passes, none ok
    fails (a strict xfail when listed), seeds that disagree or a row the tier declares undecided
    (``expectations.UNDECIDED``) are inconclusive."""
    from evals.conftest import bench_with_seed
    from evals.expectations import UNDECIDED
    from unlearn.gate.verdicts import FAIL, INCONCLUSIVE, PASS

    n = request.config.getoption("--seeds", 1)
    measured = [measure(bench)] + [measure(bench_with_seed(request, bench.name, seed)) for seed in range(1, n)]
    oks = {ok for ok, _ in measured}
    text = "; ".join(f"seed {i}: {t}" if n > 1 else t for i, (_, t) in enumerate(measured))
    outcome = (PASS if oks == {True} else FAIL) if len(oks) == 1 else INCONCLUSIVE
    why = text if len(oks) == 1 else f"the seeds disagree ({text})"
    default = request.config.getoption("--model", "tiny-qwen3") == "tiny-qwen3" and not request.config.getoption("--set", [])
    declared = UNDECIDED.get((bench.name, "target", split, check_name)) if default else None
    if declared:
        outcome, why = INCONCLUSIVE, f"{why}; the tier cannot decide this row: {declared}"
    row = {"benchmark": bench.name, "method": "target", "split": split, "row": check_name, "bar": "sanity",
           "outcome": outcome, "why": why, "value": None, "interval": None,
           "seeds": [{"ok": ok, "why": t} for ok, t in measured] if n > 1 else None}
    request.node.user_properties.append(("verdict", row))
    settle(request, outcome, f"{check_name} on {split}: {why}", ("target", split, check_name), known_failures)


def settle(request, outcome: str, text: str, key: tuple, known_failures: dict) -> None:
    """End a row's test by its outcome: inconclusive skips (its own reported outcome), a listed key runs as a strict
    xfail, anything else must pass."""
    from unlearn.gate.verdicts import INCONCLUSIVE, PASS

    if outcome == INCONCLUSIVE:
        pytest.skip(f"inconclusive: {text}")
    if key in known_failures:
        request.applymarker(pytest.mark.xfail(strict=True, raises=AssertionError, reason=known_failures[key]))
    assert outcome == PASS, text


def record_verdict(request, cell: dict, name: str, direction: str, bound: float, outcome: str, why: str, verdicts) -> None:
    """The row's verdict as the test report's user properties: the session's summary and ``UNLEARN_VERDICTS``
    read them there (the root conftest.py), under xdist too."""
    row = {"benchmark": cell.get("benchmark"), "method": cell["method"], "split": cell["split"], "row": name,
           "bar": f"{direction} {bound}", "outcome": outcome, "why": why, "value": verdicts[0].value,
           "interval": verdicts[0].interval, "seeds": [v.as_row() for v in verdicts] if len(verdicts) > 1 else None}
    request.node.user_properties.append(("verdict", row))


def default_tier(request, cell: dict) -> bool:
    """The default tier: tiny-qwen3 on the CPU in fp32 with default hyperparameters (what the snapshots, the
    known failures and the tier's declarations describe)."""
    opt = lambda name, default=None: request.config.getoption(name, default)  # noqa: E731 (absent outside this suite)
    return not (opt("--model", "tiny-qwen3") != "tiny-qwen3" or opt("--set") or opt("--max-steps") is not None
                or opt("--precision") == "bf16" or cell.get("device", "cpu") != "cpu")


def skip_unless_default_tier(request, cell: dict) -> None:
    """Snapshots pin the default tier: tiny-qwen3 on the CPU in fp32 with default hyperparameters."""
    if not default_tier(request, cell):
        pytest.skip("snapshots pin the default tier (tiny-qwen3 on the CPU in fp32, default hyperparameters)")
