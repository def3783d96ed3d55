"""The grid on Ray (``unlearn bench --executor ray``) on a local Ray instance with 2 CPUs, and in 2 local worker
processes (``--workers 2``): the same cells, bit for bit, as one process; a Ray worker killed mid-cell loses
nothing (Ray retries the task)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

NEEDS_RAY = "Ray is not installed (pip install 'unlearn-eval[ray]'; the test extra has it)"

ROOT = Path(__file__).resolve().parent.parent
RUN = """
import sys
from unlearn.bench import BenchArgs, run_bench
from unlearn.benchmarks import Profile
from unlearn.benchmarks.tofu.protocol import EvalProtocol
from unlearn.train import TrainConfig
profile = Profile(target=TrainConfig(lr=3e-3, epochs=10, batch_size=16, progress=False),
                  unlearn=TrainConfig(lr=1e-3, max_steps=2, batch_size=8, progress=False), lora=None,
                  protocol=EvalProtocol(max_new_tokens=8), synthetic_authors=4, use_real_data=False)
executor = sys.argv[2]
workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
if executor == "ray":  # a local instance of 2 CPUs, as a laptop or CI machine has
    from unlearn.executors import start_ray
    start_ray(num_cpus=2)
run_bench(BenchArgs(benchmarks=["tofu"], methods=["grad_ascent", "npo"], splits=["forget10"], output_dir=sys.argv[1],
                    profile=profile, progress=False, executor=executor, workers=workers))
"""


def _env(cache: Path) -> dict:
    return {**os.environ, "UNLEARN_CACHE_DIR": str(cache), "PYTHONPATH": str(ROOT)}


def _cells(out: Path) -> list[dict]:
    """Every cell's content but how it was run: wall times and memory, and the thread count (a Ray task has
    --cpus-per-cell threads, this process 1 or 2), which is in the numerics record and in the cached models'
    folder names (their recipe's numerics tag). Under the pins the thread count moves no number."""
    doc = json.loads((out / "benchmark_results.json").read_text())
    cells = sorted(doc["cells"], key=lambda c: c["method"])
    for c in cells:
        for volatile in ("wall_s", "peak_memory_mb", "numerics"):
            c.pop(volatile)
        c["model"].pop("target")
        c["model"].pop("gold")
        if c.get("cost"):
            c["cost"].pop("unlearn_s")
    return cells


@pytest.fixture(scope="module")
def local_cells(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    res = subprocess.run([sys.executable, "-c", RUN, str(tmp / "out"), "local"], env=_env(tmp / "cache"),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return _cells(tmp / "out")


@pytest.fixture(scope="module")
def ray_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("ray") / "cache"


def test_ray_grid_equals_the_local_one(local_cells, ray_cache, tmp_path):
    """Targets, golds and cells built by Ray tasks (an empty cache) give the local executor's cells exactly."""
    pytest.importorskip("ray", reason=NEEDS_RAY)
    res = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "out"), "ray"], env=_env(ray_cache),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("done tofu/forget10/") == 3, res.stdout[-2000:]
    assert _cells(tmp_path / "out") == local_cells


def test_two_worker_processes_give_the_one_process_cells(local_cells, tmp_path):
    """``--workers 2`` (an empty cache: the target and the gold trained side by side in the two workers, then the
    cells) writes the one-process run's cells exactly."""
    res = subprocess.run([sys.executable, "-c", RUN, str(tmp_path / "out"), "local", "2"], env=_env(tmp_path / "cache"),
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("done tofu/forget10/") == 3, res.stdout[-2000:]
    assert _cells(tmp_path / "out") == local_cells


def _task_pids(name: str) -> list[int]:
    res = subprocess.run(["pgrep", "-f", f"ray::{name}"], capture_output=True, text=True)
    return [int(p) for p in res.stdout.split()]


def test_worker_killed_mid_cell_loses_nothing(local_cells, ray_cache, tmp_path):
    """The models come from the cache the test above filled; the cells are computed again into a new folder."""
    pytest.importorskip("ray", reason=NEEDS_RAY)
    env = _env(ray_cache)
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / "out"), "ray"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed, deadline = [], time.time() + 600
    while not killed and time.time() < deadline and proc.poll() is None:
        for pid in _task_pids("run_one"):  # a worker while it runs a cell
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
            break
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=900)
    assert killed, "no cell task was seen running to kill"
    assert proc.returncode == 0, stderr[-3000:]
    assert _cells(tmp_path / "out") == local_cells  # the killed cell was run again, to the same result
