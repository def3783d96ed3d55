"""``unlearn bench --log-to mlflow,wandb`` and ``unlearn log``: a grid (a stand-in benchmark, no model) logged to
the real MLflow (a SQLite store in the output folder) and to W&B in offline mode, then read back, MLflow with
``MlflowClient`` and W&B from its offline run files: every cell, param and metric present and equal to the
results JSON, the dynamics as step metrics, the report and the JSON as artifacts. Both packages are test extras;
the tests skip, saying why, without them."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import pytest

from tests.test_bench_faults import FakeBench, register_fake
from unlearn.cli import main
from unlearn.trackers import cell_metrics, cell_name, cell_params, cell_steps, wandb_key

METHODS = ["grad_ascent", "npo"]


class TrackedBench(FakeBench):
    """FakeBench's cells with what a tracker logs: settings, numbers, a NaN, a None and dynamics."""

    def run_cell(self, method, split, overrides):
        cell = super().run_cell(method, split, overrides)
        k = METHODS.index(method) + 1 if method in METHODS else 3  # the gold row (retrain) too
        cell.update(method_config={"lr": 1e-4 * k, "beta": 0.1}, seed=self.kwargs.get("seed", 0),
                    metrics={"forget_rouge": 0.25 * k, "forget_quality": float("nan"), "extraction_strength": None},
                    dynamics=[{"step": s, "forget_prob": 0.9 - 0.1 * s * k, "retain_prob": 0.8} for s in range(0, 6, 2)])
        return cell


@pytest.fixture
def grid(monkeypatch, tmp_path):
    register_fake(monkeypatch, tmp_path, TrackedBench)
    return tmp_path / "out"


def _bench(out: Path, trackers: str) -> dict:
    assert main(["bench", "--benchmarks", "fake", "--methods", ",".join(METHODS), "--workers", "1",
                 "--output_dir", str(out), "--log-to", trackers]) == 0
    return json.loads((out / "benchmark_results.json").read_text())


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_what_a_cell_logs_is_read_off_its_json():
    cell = {"benchmark": "tofu", "split": "forget01", "method": "npo", "seed": 1, "model": {"name": "tiny-qwen3"},
            "method_config": {"beta": 0.1}, "summary": {"forget_efficacy": 0.5, "mia_auc": float("nan")},
            "metrics": {"flag": True, "none": None, "x": 2}, "dynamics": [{"step": 4, "forget_prob": 0.3, "y": None}]}
    assert cell_name(cell, seeds=2) == "tofu/forget01/npo/seed1" and cell_name(cell, seeds=1) == "tofu/forget01/npo"
    assert cell_params(cell) == {"benchmark": "tofu", "split": "forget01", "method": "npo", "seed": "1",
                                 "model": "tiny-qwen3", "method.beta": "0.1"}
    metrics = cell_metrics(cell)
    assert metrics.keys() == {"summary.forget_efficacy", "summary.mia_auc", "metrics.x"}  # a bool or None is no number
    assert math.isnan(metrics["summary.mia_auc"]) and metrics["metrics.x"] == 2.0
    assert cell_steps(cell) == [(4, {"dynamics.forget_prob": 0.3})]


def test_mlflow_holds_every_cell_param_and_metric_of_the_json(grid, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'unlearn-eval[mlflow]')")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    doc = _bench(grid, "mlflow")
    client = MlflowClient(f"sqlite:///{grid.resolve() / 'mlflow.db'}")
    exp = client.get_experiment_by_name("unlearn")
    runs = client.search_runs([exp.experiment_id])
    (parent,) = [r for r in runs if r.data.tags.get("unlearn.kind") == "grid"]
    children = {r.info.run_name: r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    assert parent.data.params["model"] == doc["run"]["model"]
    assert parent.data.metrics["cells"] == len(doc["cells"]) == len(METHODS) + 1 == len(children)  # the methods and the gold
    assert parent.info.status == "FINISHED"
    for cell in doc["cells"]:
        run = children[cell_name(cell, 1)]
        assert run.data.params == cell_params(cell) and run.data.params["method.lr"] == json.dumps(cell["method_config"]["lr"])
        want = cell_metrics(cell)
        assert run.data.metrics.keys() - {"dynamics.forget_prob", "dynamics.retain_prob"} == want.keys()
        assert all(_same(run.data.metrics[k], v) for k, v in want.items()), (run.data.metrics, want)
        assert "metrics.extraction_strength" not in run.data.metrics  # None in the JSON: not logged as a number
        history = client.get_metric_history(run.info.run_id, "dynamics.forget_prob")
        assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == \
            [(p["step"], p["forget_prob"]) for p in cell["dynamics"]]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"benchmark_results.json", "report.html", "results.md"} <= names
    logged = json.loads(Path(client.download_artifacts(parent.info.run_id, "benchmark_results.json")).read_text())
    assert logged["cells"][0]["summary"] == doc["cells"][0]["summary"]

    # a finished run logged again afterwards: a second grid run beside the first
    assert main(["log", str(grid), "--to", "mlflow"]) == 0
    assert len([r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("unlearn.kind") == "grid"]) == 2


# ---------------------------------------------------------------- W&B offline run files
def _wandb_records(path: Path) -> list:
    """The protobuf records of an offline run file: a 7-byte header (":W&B", 0xBEE1, version 0), then LevelDB's log
    format (32 KiB blocks of records: CRC-32C, length, type (1 whole, 2 first, 3 middle, 4 last), data)."""
    from wandb.proto import wandb_internal_pb2

    raw = path.read_bytes()
    assert raw[:4] == b":W&B", path
    records, pos, parts = [], 7, b""
    while pos + 7 <= len(raw):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", raw[pos:pos + 7])
        if kind == 0:  # the zero padding at a block's end
            pos += left
            continue
        parts += raw[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(parts)
            records.append(rec)
            parts = b""
    return records


def _wandb_run(path: Path) -> dict:
    """name, config, summary, history of one offline run, from its records."""
    out = {"config": {}, "summary": {}, "history": []}
    key = lambda item: item.key or "/".join(item.nested_key)  # noqa: E731
    for rec in _wandb_records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out["name"], out["group"] = rec.run.display_name, rec.run.run_group
            out["config"].update({i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "config":
            out["config"].update({i.key: json.loads(i.value_json) for i in rec.config.update})
        elif kind == "summary":
            out["summary"].update({key(i): json.loads(i.value_json) for i in rec.summary.update})
        elif kind == "history":
            out["history"].append({key(i): json.loads(i.value_json) for i in rec.history.item})
    return out


def test_wandb_offline_runs_hold_every_cell_param_and_metric_of_the_json(grid, monkeypatch):
    pytest.importorskip("wandb", reason="the wandb extra is not installed (pip install 'unlearn-eval[wandb]')")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    doc = _bench(grid, "wandb")
    runs = [_wandb_run(p) for p in sorted((grid / "wandb").glob("offline-run-*/run-*.wandb"))]
    by_name = {r["name"]: r for r in runs}
    assert len(runs) == len(doc["cells"]) + 1 and len({r["group"] for r in runs}) == 1
    assert by_name["grid"]["summary"]["cells"] == len(doc["cells"])
    for cell in doc["cells"]:
        run = by_name[cell_name(cell, 1)]
        assert {k: str(v) for k, v in run["config"].items() if not k.startswith("_")} == cell_params(cell)
        want = {wandb_key(k): v for k, v in cell_metrics(cell).items()}
        got = {k: math.nan if v is None else v for k, v in run["summary"].items() if k in want}  # NaN: W&B's null
        assert got.keys() == want.keys() and all(_same(got[k], v) for k, v in want.items()), (got, want)
        steps = [(h["_step"], h["dynamics/forget_prob"]) for h in run["history"] if "dynamics/forget_prob" in h]
        assert steps == [(p["step"], p["forget_prob"]) for p in cell["dynamics"]]


def test_a_tracker_that_is_not_installed_or_known_is_a_usage_error(grid, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    assert main(["bench", "--benchmarks", "fake", "--methods", "npo", "--output_dir", str(grid), "--log-to", "mlflow"]) == 2
    err = capsys.readouterr().err
    assert "argument --log-to" in err and "pip install 'unlearn-eval[mlflow]'" in err, err
    assert main(["bench", "--benchmarks", "fake", "--methods", "npo", "--output_dir", str(grid), "--log-to", "tensorboard"]) == 2
    assert "unknown tracker 'tensorboard'; valid: mlflow, wandb" in capsys.readouterr().err
    assert FakeBench.ran == []  # refused before any cell


def test_the_trackers_are_imported_only_when_asked():
    import subprocess
    import sys

    code = ("import sys, unlearn.cli, unlearn.bench, unlearn.trackers; "
            "print(sorted(m for m in ('mlflow', 'wandb') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
