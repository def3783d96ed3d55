"""Shared pytest options and fixtures for tests/ and evals/."""

from __future__ import annotations

import os
import random

# Before torch is imported: the same (AVX2) CPU kernels and thread count on every machine, so the tiny
# tier trains the same models and the snapshots hold on Intel AVX-512/AMX and AMD AVX2 CPUs alike.
# See unlearn/numerics.py; UNLEARN_NUMERICS=native turns this off.
from unlearn.numerics import pin_numerics, set_threads

pin_numerics()

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

# CI (.ci/run sets HYPOTHESIS_PROFILE=ci): the generated examples are the same on every run, so a red CI belongs to
# the change, not to the draw; a local run keeps drawing new ones (how the bugs the properties found were found)
settings.register_profile("ci", derandomize=True)
if os.environ.get("HYPOTHESIS_PROFILE"):
    settings.load_profile(os.environ["HYPOTHESIS_PROFILE"])

# the expectation rows' outcomes in the session summary (inconclusive counted as its own outcome)
pytest_plugins = ["evals.verdict_plugin"]


def pytest_addoption(parser):
    g = parser.getgroup("unlearn")
    g.addoption("--model", default="tiny-qwen3", help="model preset, hub id or folder for evals (default tiny-qwen3)")
    g.addoption("--data-dir", default=None, help="benchmark data folder (default: $UNLEARN_DATA_DIR)")
    g.addoption("--device", default="auto", help="torch device for evals: auto (CUDA when present), cpu, cuda")
    g.addoption("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                help="autocast for evals: auto = bf16 where the hardware has it (the tiny tier stays fp32)")
    g.addoption("--max-steps", type=int, default=None, help="cap on unlearning optimiser steps in evals")
    g.addoption("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE", help="method hyperparameter override")
    g.addoption("--seeds", type=int, default=1,
                help="run every eval cell with seeds 0..N-1 (each with its own target and gold); the expectation "
                     "rows must hold on every seed (default 1)")


def pytest_configure(config):
    # A fixed thread count: 2, or 1 per worker under `pytest -n 2` (unlearn.numerics.worker_threads).
    set_threads()


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def data_dir(request):
    return request.config.getoption("--data-dir") or os.environ.get("UNLEARN_DATA_DIR") or None


@pytest.fixture(scope="session")
def real_data_dir(data_dir):
    from pathlib import Path

    if not data_dir or not (Path(data_dir) / "tofu" / "full.json").is_file():
        pytest.skip("real TOFU data not found: pass --data-dir or set UNLEARN_DATA_DIR to a folder with tofu/")
    return Path(data_dir)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup``: the tests that read one benchmark cell share a worker (evals/scheduling.py)."""
    if config.getvalue("dist") == "loadgroup":
        from evals.scheduling import CellScheduling

        return CellScheduling(config, log)
    return None
