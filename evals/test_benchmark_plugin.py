"""A benchmark really is one folder: a copy of the unsafe benchmark's package under another name ("toy", a
package outside this project, registered by an ``unlearn.benchmarks`` entry point, its tier recipes declared in
its own class) is found by every consumer without a file of this project touched: ``unlearn bench --list-cells``
and a run of one of its cells (the results table and report), ``unlearn eval``, and the gate plugin's
parametrised cells and rows. The copy keeps the unsafe package's model prefix and recipes, so its target and gold
are the unsafe cells' (cached)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.unsafe

TOY_RECIPES = '''

# the toy's tier recipes, declared in its own folder (a copy of the unsafe benchmark's)
from unlearn.tiers import TIERS  # noqa: E402

UnsafeBenchmark.recipes = {k.replace("unsafe", tier.name): r for tier in TIERS.values()
                           for k, r in tier.recipes.items() if k.split("@")[0] == "unsafe"}
'''


@pytest.fixture(scope="module")
def toy_env(tmp_path_factory):
    """The environment of a Python that has the toy benchmark package installed (a path entry and its metadata)."""
    site = tmp_path_factory.mktemp("site")
    pkg = site / "unlearn_toy_bench"
    shutil.copytree(ROOT / "unlearn" / "benchmarks" / "unsafe", pkg, ignore=shutil.ignore_patterns("__pycache__"))
    for path in pkg.glob("*.py"):
        text = path.read_text().replace("unlearn.benchmarks.unsafe", "unlearn_toy_bench").replace('"unsafe"', '"toy"')
        path.write_text(text + (TOY_RECIPES if path.name == "benchmark.py" else ""))
    info = site / "unlearn_toy_bench-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: unlearn-toy-bench\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[unlearn.benchmarks]\ntoy = unlearn_toy_bench\n")
    # no data folder: the toy's real split would look for its own (toy/) sets; the tiny tier's split is generated
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER"))
           and k != "UNLEARN_DATA_DIR"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)])
    env["PYTEST_XDIST_WORKER_COUNT"] = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")  # the same torch threads
    # no file of the package touched (git's view of unlearn/: what other tests write elsewhere does not count)
    status = ["git", "status", "--porcelain", "--untracked-files=all", "--", "unlearn"]
    before = subprocess.run(status, cwd=ROOT, capture_output=True, text=True).stdout
    yield env
    assert subprocess.run(status, cwd=ROOT, capture_output=True, text=True).stdout == before


def _run(env, *args, cwd=ROOT, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_the_toy_benchmark_is_listed_and_its_cell_runs_into_the_results_and_the_report(toy_env, tmp_path):
    grid = ["-m", "unlearn", "bench", "--benchmarks", "toy", "--splits", "synthetic", "--methods", "npo", "--model",
            "tiny-qwen3"]  # its real split needs a data folder of toy/ sets (as unsafe's does)
    listed = _run(toy_env, *grid, "--list-cells", "--output_dir", tmp_path / "list")
    assert listed.returncode == 0 and "toy-synthetic-npo" in listed.stdout, listed.stdout + listed.stderr
    out = tmp_path / "out"
    run = _run(toy_env, *grid, "--output_dir", out, "--workers", "1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    doc = json.loads((out / "benchmark_results.json").read_text())
    cells = {(c["benchmark"], c["split"], c["method"]) for c in doc["cells"]}
    assert cells == {("toy", "synthetic", "npo"), ("toy", "synthetic", "retrain")}, cells
    npo = next(c for c in doc["cells"] if c["method"] == "npo")
    assert set(npo["summary"]) >= {"forget_efficacy", "retain_performance", "mia_auc"}
    assert npo["model"]["target"].startswith("unsafe-target-")  # the copy's prefix: the unsafe cells' target
    table = (out / "results.md").read_text()
    # the report's columns: the registry's declaration of the toy (the copy's native metrics)
    from unlearn.benchmarks import BENCHMARKS

    for metric in BENCHMARKS.get("unsafe").native_metrics:
        assert metric in table, (metric, table)
    assert "toy" in table and "toy" in (out / "report.html").read_text()


def test_the_toy_benchmark_is_evaluated_and_gated(toy_env, tmp_path):
    ev = _run(toy_env, "-m", "unlearn", "eval", "--benchmark", "toy", "--model", "tiny-qwen3", "--max-rows", "2",
              "--device", "cpu", "--json")
    assert ev.returncode == 0, ev.stderr[-3000:]
    result = json.loads(ev.stdout)
    assert result["benchmark"] == "toy" and result["split"] == "synthetic" and result["metrics"], result.keys()
    gate = _run(toy_env, "-m", "pytest", "-p", "unlearn.gate", "-p", "no:cacheprovider", "--collect-only", "-q",
                "-m", "toy", "--unlearn-methods", "npo", cwd=tmp_path)
    ids = {line.split("::", 1)[1] for line in gate.stdout.splitlines() if "::" in line}
    splits = ("synthetic", "real")  # the gate's cells: every split the toy declares (as for unsafe)
    assert ids == {f"test_row[toy-{s}-npo-{r}]" for s in splits for r in ("forget_efficacy", "retain_performance",
                                                                          "mia_gap")} \
        | {f"test_snapshot[toy-{s}-npo]" for s in splits}, gate.stdout + gate.stderr
