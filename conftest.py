"""Shared pytest options and fixtures for tests/ and evals/."""

from __future__ import annotations

import os
import random

import pytest
import torch


def pytest_addoption(parser):
    g = parser.getgroup("unlearn")
    g.addoption("--model", default="tiny-qwen3", help="model preset, hub id or folder for evals (default tiny-qwen3)")
    g.addoption("--data-dir", default=None, help="benchmark data folder (default: $UNLEARN_DATA_DIR)")
    g.addoption("--device", default="cpu", help="torch device for evals")
    g.addoption("--max-steps", type=int, default=None, help="cap on unlearning optimiser steps in evals")
    g.addoption("--set", action="append", default=[], metavar="METHOD.FIELD=VALUE", help="method hyperparameter override")


def pytest_configure(config):
    # Same thread count everywhere: CPU kernels can reduce in a different order with more threads,
    # and the snapshots compare rounded metrics.
    torch.set_num_threads(2)


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
