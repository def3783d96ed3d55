"""Cell fixtures' shared parts: each (method, split) runs once per session and is shared by its threshold and
snapshot tests; with UNLEARN_EVAL_DUMP=FILE the session's summaries and metrics are written there at the end
(to read measured values off one run, e.g. for an expectations table)."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
