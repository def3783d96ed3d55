"""The tests ``pytest -p unlearn.gate --unlearn-methods NAME`` adds (see :mod:`unlearn.gate`): per benchmark x
split x method, one test per expectation row and one snapshot of the cell's rounded metrics. Each cell unlearns
once per session; each benchmark's target and gold are trained once and cached (``$UNLEARN_CACHE_DIR``)."""

from __future__ import annotations

import pytest

from unlearn.gate import GATE
from unlearn.gate.expectations import rows_for

_BENCHES: dict = {}
_CELLS: dict = {}


def _splits(benchmark: str) -> tuple[str, ...]:
    from unlearn.benchmarks import BENCHMARKS

    return tuple(BENCHMARKS.get(benchmark).splits)


def _grid(config) -> list[tuple[str, str, str]]:
    from unlearn.benchmarks import BENCHMARKS

    gate = config.stash[GATE]
    return [(b, s, m) for b in BENCHMARKS.names() for s in _splits(b) for m in gate["methods"]]


def pytest_generate_tests(metafunc):
    config = metafunc.config
    cell = lambda b, s, m, *rest: dict(id="-".join([b, s, m, *rest]), marks=getattr(pytest.mark, b))  # noqa: E731
    if "row" in metafunc.fixturenames:
        rows = config.stash[GATE]["rows"]
        metafunc.parametrize("key,row", [pytest.param((b, s, m), row, **cell(b, s, m, row[0]))
                                         for b, s, m in _grid(config) for row in rows_for(rows, b, m)])
    elif "key" in metafunc.fixturenames:
        metafunc.parametrize("key", [pytest.param((b, s, m), **cell(b, s, m)) for b, s, m in _grid(config)])


def _bench(config, name: str):
    if name not in _BENCHES:
        import os

        from unlearn.benchmarks import BENCHMARKS

        gate = config.stash[GATE]
        real = gate["model"] != "tiny-qwen3"
        data_dir = config.getoption("--unlearn-data-dir") or os.environ.get("UNLEARN_DATA_DIR")
        _BENCHES[name] = BENCHMARKS.get(name)(gate["model"], data_dir=data_dir if real else None,
                                              protocol="reduced" if real else None, progress=False)
    return _BENCHES[name]


def _cell(config, key: tuple[str, str, str]) -> dict:
    if key not in _CELLS:
        from unlearn.tune import resolve_multiple

        benchmark, split, method = key
        bench = _bench(config, benchmark)
        overrides = {m: {k: resolve_multiple(v, bench.profile.unlearn.lr) for k, v in fields.items()}
                     for m, fields in config.stash[GATE]["overrides"].items()}
        _CELLS[key] = {**bench.run_cell(method, split, overrides), "benchmark": benchmark}
    return _CELLS[key]


def test_row(key, row, request):
    """One expectation row on one cell, by :mod:`unlearn.gate.verdicts`: pass, fail, or inconclusive (skipped,
    saying so: the interval straddles the bar, so this tier cannot decide it)."""
    from unlearn.gate.verdicts import INCONCLUSIVE, PASS, verdict

    cell = _cell(request.config, key)
    name, direction, bound = row
    gate = request.config.stash[GATE]
    source = gate["source"] if (key[0], key[2]) in gate["rows"] else "the default bar"
    v = verdict(cell, name, direction, bound)
    request.node.user_properties.append(("verdict", {**v.as_row(), "benchmark": key[0], "split": key[1],
                                                     "method": key[2], "row": name, "bar": f"{direction} {bound}"}))
    if v.outcome == INCONCLUSIVE:
        pytest.skip(f"inconclusive: {key[2]} on {key[0]}/{key[1]}: {v.why}")
    assert v.outcome == PASS, f"{key[2]} on {key[0]}/{key[1]}: {v.why} (row from {source})"


def test_snapshot(key, snapshot, request):
    """The cell's rounded metrics against the repository's snapshot, within the tier's measured seed spread."""
    from unlearn.gate.snapshots import metric_snapshot_of, snapshots_of

    gate = request.config.stash[GATE]
    if gate["model"] != "tiny-qwen3" or gate["overrides"].keys() - set(gate["methods"]):
        pytest.skip("snapshots pin the tiny tier with the gated methods' own settings")
    benchmark, split, method = key
    cell = _cell(request.config, key)
    ext = snapshots_of(benchmark, split, method, root=gate["snapshots"])
    assert metric_snapshot_of(benchmark)(cell) == snapshot(extension_class=ext)
