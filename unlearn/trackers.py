"""A finished grid's results in the experiment trackers people already use: ``unlearn bench --log-to mlflow`` or
``--log-to wandb`` (both optional extras, imported only when asked), and ``unlearn log RESULTS --to ...`` for a
run that finished earlier.

What is logged comes from the results document (``benchmark_results.json``) alone, so a tracker holds the same
numbers as the JSON:

- one run for the grid: its run information as params (model, precision, seeds, commit, ...), the counts of cells
  and stopped cells and the wall time as metrics, and the output files (``report.html``, the JSON, the tables and
  plots) as artifacts;
- one run per cell, nested under the grid's run (MLflow) or in the grid's group (W&B): the cell's settings as
  params (benchmark, split, method, seed, model, protocol, each ``method_config`` field as ``method.FIELD``), its
  summary columns as ``summary.NAME``, its benchmark metrics as ``metrics.NAME`` (numbers only; None is left out),
  and its dynamics as step metrics ``dynamics.NAME`` at each recorded unlearning step (W&B: ``summary/NAME``,
  ``metrics/NAME``, ``dynamics/NAME``, its section convention; it stores a NaN as null).

MLflow: the tracking URI is ``$MLFLOW_TRACKING_URI`` when set, else a SQLite store ``mlflow.db`` in the output
folder with the artifacts beside it in ``mlruns/`` (MLflow's file store is in maintenance mode and refuses to
start without an opt-in). W&B: ``$WANDB_MODE`` decides online or offline (offline without network: the runs land
in the output folder's ``wandb/``, for ``wandb sync`` later); the project is ``$WANDB_PROJECT`` or ``unlearn``."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from pathlib import Path

TRACKERS = {"mlflow": ("mlflow", "pip install 'unlearn-eval[mlflow]'"),
            "wandb": ("wandb", "pip install 'unlearn-eval[wandb]'")}
EXPERIMENT = "unlearn"
# run information logged as the grid run's params (the rest of it is in the JSON artifact)
RUN_PARAMS = ("model", "quant", "dry_run", "max_steps", "seed", "seeds", "device", "precision", "protocol",
              "git_commit", "python")
CELL_PARAMS = ("benchmark", "split", "method", "seed", "precision", "device", "protocol_name", "compat", "target_eval")
ARTIFACTS = ("benchmark_results.json", "report.html", "results.md", "results_table.tex", "forget_vs_retain.png",
             "dynamics.png", "robustness.png")


def check_available(name: str) -> None:
    """Raises KeyError for an unknown tracker, ValueError (with the install line) for one not installed."""
    if name not in TRACKERS:
        raise KeyError(f"unknown tracker {name!r}; valid: {', '.join(TRACKERS)}")
    module, install = TRACKERS[name]
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{name} needs the {module} package: {install}")


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _text(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, allow_nan=True)


def cell_name(cell: dict, seeds: int) -> str:
    name = f"{cell['benchmark']}/{cell['split']}/{cell['method']}"
    return name + (f"/seed{cell.get('seed', 0)}" if seeds > 1 else "")


def cell_params(cell: dict) -> dict[str, str]:
    """A cell's settings as tracker params (strings)."""
    out = {k: _text(cell[k]) for k in CELL_PARAMS if cell.get(k) is not None}
    model = cell.get("model")
    if isinstance(model, dict) and model.get("name"):
        out["model"] = model["name"]
    for field, value in sorted((cell.get("method_config") or {}).items()):
        out[f"method.{field}"] = _text(value)
    return out


def cell_metrics(cell: dict) -> dict[str, float]:
    """A cell's summary columns and benchmark metrics that are numbers (NaN kept: it is what the JSON says)."""
    out = {}
    for group in ("summary", "metrics"):
        for k, v in sorted((cell.get(group) or {}).items()):
            x = _number(v)
            if x is not None:
                out[f"{group}.{k}"] = x
    return out


def cell_steps(cell: dict) -> list[tuple[int, dict[str, float]]]:
    """(step, {``dynamics.NAME``: value}) of each recorded point of the unlearning run."""
    out = []
    for point in cell.get("dynamics") or []:
        values = {f"dynamics.{k}": x for k, v in point.items() if k != "step" and (x := _number(v)) is not None}
        out.append((int(point["step"]), values))
    return out


def run_params(run: dict) -> dict[str, str]:
    return {k: _text(run[k]) for k in RUN_PARAMS if run.get(k) is not None}


def run_metrics(doc: dict) -> dict[str, float]:
    run = doc.get("run", {})
    out = {"cells": float(len(doc.get("cells", []))), "failed_cells": float(len(run.get("failed") or []))}
    if _number(run.get("wall_s")) is not None:
        out["wall_s"] = float(run["wall_s"])
    return out


def artifacts(folder: Path) -> list[Path]:
    return [folder / name for name in ARTIFACTS if (folder / name).is_file()]


def log_results(names: list[str], doc: dict, folder: Path, log=print) -> dict[str, str]:
    """Log the results document ``doc`` (written in ``folder``) to each tracker of ``names``; returns where each
    went (a tracking URI and run id, or a folder)."""
    where = {}
    for name in names:
        check_available(name)
        where[name] = {"mlflow": log_mlflow, "wandb": log_wandb}[name](doc, Path(folder))
        log(f"logged {len(doc.get('cells', []))} cells to {name}: {where[name]}")
    return where


# ---------------------------------------------------------------- MLflow
def mlflow_uri(folder: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path(folder).resolve() / 'mlflow.db'}"


def log_mlflow(doc: dict, folder: Path) -> str:
    """The grid as one MLflow run with a nested run per cell (batched writes); returns ``URI run RUN_ID``."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri(folder)
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        local = not os.environ.get("MLFLOW_TRACKING_URI")
        exp_id = client.create_experiment(
            EXPERIMENT, artifact_location=(folder.resolve() / "mlruns").as_uri() if local else None)
    else:
        exp_id = exp.experiment_id
    now = int(time.time() * 1000)
    run = doc.get("run", {})
    seeds = len(run.get("seeds") or [0])

    def batch(run_id: str, params: dict, metrics: dict, steps=()) -> None:
        ms = [Metric(k, v, now, 0) for k, v in metrics.items()]
        ms += [Metric(k, v, now, step) for step, values in steps for k, v in values.items()]
        ps = [Param(k, v) for k, v in params.items()]
        for i in range(0, max(len(ms), len(ps), 1), 100):  # MLflow's per-request limit is 100 params
            client.log_batch(run_id, metrics=ms[i:i + 100], params=ps[i:i + 100])

    grid = client.create_run(exp_id, run_name=f"grid {folder.resolve().name}", tags={"unlearn.kind": "grid"})
    gid = grid.info.run_id
    try:
        batch(gid, run_params(run), run_metrics(doc))
        for cell in doc.get("cells", []):
            child = client.create_run(exp_id, run_name=cell_name(cell, seeds),
                                      tags={"mlflow.parentRunId": gid, "unlearn.kind": "cell"})
            batch(child.info.run_id, cell_params(cell), cell_metrics(cell), cell_steps(cell))
            client.set_terminated(child.info.run_id)
        for path in artifacts(folder):
            client.log_artifact(gid, str(path))
    except BaseException:
        client.set_terminated(gid, status="FAILED")
        raise
    client.set_terminated(gid)
    return f"{uri} run {gid}"


# ---------------------------------------------------------------- Weights & Biases
def wandb_key(name: str) -> str:
    """W&B's spelling of a metric name: its section after a slash (``summary/mia_auc``; a dot would nest the key).
    W&B stores a NaN as null."""
    return name.replace(".", "/", 1)


def log_wandb(doc: dict, folder: Path) -> str:
    """One W&B run per cell and one for the grid, all in one group (W&B has no nesting); returns the folder of
    the runs (offline) or the group name."""
    import wandb

    run = doc.get("run", {})
    seeds = len(run.get("seeds") or [0])
    project = os.environ.get("WANDB_PROJECT", EXPERIMENT)
    group = f"grid {folder.resolve().name} {time.strftime('%Y%m%d-%H%M%S')}"
    settings = wandb.Settings(silent=True, console="off", save_code=False)

    def start(name: str, config: dict, kind: str):
        return wandb.init(project=project, group=group, name=name, job_type=kind, config=config, dir=str(folder),
                          settings=settings, reinit="create_new")

    for cell in doc.get("cells", []):
        r = start(cell_name(cell, seeds), cell_params(cell), "cell")
        for step, values in cell_steps(cell):
            r.log({wandb_key(k): v for k, v in values.items()}, step=step)
        for k, v in cell_metrics(cell).items():
            r.summary[wandb_key(k)] = v
        r.finish()
    r = start("grid", run_params(run), "grid")
    for k, v in run_metrics(doc).items():
        r.summary[k] = v
    art = wandb.Artifact(f"results-{r.id}", type="results")
    for path in artifacts(folder):
        art.add_file(str(path))
    r.log_artifact(art)
    r.finish()
    return str(folder / "wandb") if os.environ.get("WANDB_MODE") in ("offline", "dryrun") else group


def read_results_doc(path: Path) -> tuple[dict, Path]:
    """(results document, its folder) of a results folder or ``benchmark_results.json``."""
    from unlearn.report import read_results

    path = Path(path)
    file = path / "benchmark_results.json" if path.is_dir() else path
    return read_results(file), file.parent

