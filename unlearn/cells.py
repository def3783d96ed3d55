"""One cell of the grid, as every executor computes it: the benchmark object built the same way in every
process (``bench_kwargs``), the cell run under its file lock and written atomically (``compute_cell``), and a
finished cell file read back (``read_cell``)."""

from __future__ import annotations

import json
from pathlib import Path

from filelock import FileLock

from unlearn.benchmarks.tofu.metrics import write_log_dir
from unlearn.cache import atomic_write
from unlearn.report import SCHEMA_VERSION
from unlearn.train import NonFiniteLossError


def read_cell(path: Path) -> tuple[dict | None, str | None]:
    """A finished cell file, or (None, why it cannot be reused): unreadable JSON or another schema version."""
    try:
        cell = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"unreadable ({type(err).__name__}: {err})"
    if not isinstance(cell, dict) or cell.get("schema_version") != SCHEMA_VERSION:
        got = cell.get("schema_version") if isinstance(cell, dict) else type(cell).__name__
        return None, f"written by schema version {got}, this version writes {SCHEMA_VERSION}"
    return cell, None


def profile_of(profile, bench: str):
    """A caller's profile for ``bench``: from a {benchmark: profile} dict, or a bare profile (TOFU's)."""
    if isinstance(profile, dict):
        return profile.get(bench)
    return profile if bench == "tofu" else None


def bench_kwargs(args, b: str) -> dict:
    """How ``unlearn bench`` constructs benchmark ``b`` (the same in every process of a distributed grid)."""
    return dict(data_dir=args.data_dir, quant=args.quant, device=args.device, dry_run=args.dry_run,
                max_steps=args.max_steps, seed=args.seed, progress=args.progress, profile=profile_of(args.profile, b),
                precision=args.precision, data=args.data, protocol=args.protocol, compat=args.compat,
                robustness=args.robustness)


def compute_cell(runner, b: str, s: str, m: str, args, path: Path, why: str | None,
                 out: Path) -> tuple[str, dict, str]:
    """One cell under its lock: ("reuse", cell) when another process finished it meanwhile, ("done", cell) after
    running it and writing its file, or ("failed", {benchmark, split, method, error}) when its loss turned
    non-finite; with the line to log."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # another `unlearn bench` on this folder computing the same cell holds the lock: wait, then reuse
    with FileLock(str(path) + ".lock"):
        cell, _ = read_cell(path) if path.is_file() and why is None and not args.force else (None, None)
        if cell is not None:
            return "reuse", cell, f"reuse {b}/{s}/{m}: another run finished it meanwhile ({path})"
        note = f"recompute {b}/{s}/{m}: {path} is {why}; " if why else ""
        try:
            cell = runner.run_cell(m, s, args.overrides)
        except NonFiniteLossError as err:
            return ("failed", {"benchmark": b, "split": s, "method": m, "error": str(err)},
                    f"{note}FAILED {b}/{s}/{m}: {err}; the other cells go on")
        cell["schema_version"] = SCHEMA_VERSION
        cell["seed"] = args.seed
        if b == "tofu":  # TOFU's own tooling (and `unlearn tofu-aggregate`) can read these
            write_log_dir(cell["per_question"]["logs"], out / "tofu_logs" / path.stem)
        atomic_write(path, json.dumps(cell, allow_nan=True))
    return "done", cell, f"{note}done {b}/{s}/{m}"
