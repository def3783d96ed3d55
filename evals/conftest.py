"""evals/: cells on the default tiny tier run everywhere; any other --model is slow and reads real data."""

import pytest


def pytest_collection_modifyitems(config, items):
    if config.getoption("--model") == "tiny-qwen3":
        return
    for item in items:
        if "evals" in str(item.fspath):
            item.add_marker(pytest.mark.slow)
            item.add_marker(pytest.mark.real_data)
