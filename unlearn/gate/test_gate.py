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


_EVALS: dict = {}


def _judged(benchmark: str) -> bool:
    """Whether the benchmark's checkpoint rows may be measured against a target and a gold."""
    from unlearn.benchmarks import BENCHMARKS

    return BENCHMARKS.get(benchmark).judges_given_models()


def _evaluation(config, benchmark: str, split: str) -> dict:
    """``unlearn eval`` of the checkpoint on one benchmark split (once per session), its result written whole to
    the logs folder (``BENCHMARK-SPLIT.json``; TOFU's per-question logs beside it in TOFU's format)."""
    if (benchmark, split) not in _EVALS:
        import json
        from pathlib import Path

        from unlearn.eval_job import run_eval, write_eval
        from unlearn.gate.expectations import CHECKPOINT

        gate = config.stash[GATE]
        subjects = None
        if benchmark == "wmdp":  # the question sets the rows name (wmdp_bio_acc -> bio, mmlu_acc -> mmlu)
            names = [r[0] for r in gate["rows"][benchmark, CHECKPOINT]]
            subjects = sorted({n.split("_")[1] if n.startswith("wmdp_") else n.split("_")[0] for n in names})
        refs = {"target": gate["target"], "gold": gate["gold"]} if _judged(benchmark) else {}
        result = run_eval(benchmark, None if split == "all" else split, gate["checkpoint"], adapter=gate["adapter"],
                          protocol=gate["protocol"], data_dir=gate["data_dir"], max_rows=gate["max_rows"], subjects=subjects,
                          progress=False, **refs)
        logs = Path(gate["logs"])
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{benchmark}-{split}.json").write_text(json.dumps(result, indent=1, allow_nan=True, default=str))
        if result.get("logs"):
            write_eval(result, logs / f"{benchmark}-{split}")
        _EVALS[benchmark, split] = result
    return _EVALS[benchmark, split]


def checkpoint_interval(result: dict, name: str) -> list | None:
    """The bootstrap interval over questions of an accuracy metric (``SET_acc``: the share of SET's questions
    answered right); None for any other metric."""
    from unlearn.intervals import mean_interval

    pq = (result.get("per_question") or {}).get(name[: -len("_acc")]) if name.endswith("_acc") else None
    if not isinstance(pq, dict) or "pred" not in pq or "answer" not in pq:
        return None
    return mean_interval([float(p == a) for p, a in zip(pq["pred"], pq["answer"])])


def _checkpoint_grid(config) -> list[tuple[str, str, tuple]]:
    """(benchmark, split, row) of every [BENCHMARK.checkpoint] row: TOFU on each split; WMDP once ("all": its
    question sets are the rows' subjects); MUSE and unsafe on their first split (every MUSE split evaluates the
    same sets)."""
    from unlearn.gate.expectations import CHECKPOINT

    gate = config.stash[GATE]
    if not gate["checkpoint"]:
        return []
    out = []
    for (b, m), rows in gate["rows"].items():
        if m == CHECKPOINT:
            splits = ("all",) if b == "wmdp" else _splits(b) if b == "tofu" else _splits(b)[:1]
            out += [(b, s, row) for s in splits for row in rows]
    return out


def pytest_generate_tests(metafunc):
    config = metafunc.config
    cell = lambda b, s, m, *rest: dict(id="-".join([b, s, m, *rest]), marks=getattr(pytest.mark, b))  # noqa: E731
    if "checkpoint_row" in metafunc.fixturenames:
        metafunc.parametrize("key,checkpoint_row", [pytest.param((b, s), row, **cell(b, s, "checkpoint", row[0]))
                                                    for b, s, row in _checkpoint_grid(config)])
    elif "row" in metafunc.fixturenames:
        rows = config.stash[GATE]["rows"]
        metafunc.parametrize("key,row", [pytest.param((b, s, m), row, **cell(b, s, m, row[0]))
                                         for b, s, m in _grid(config) for row in rows_for(rows, b, m)])
    elif "key" in metafunc.fixturenames:
        metafunc.parametrize("key", [pytest.param((b, s, m), **cell(b, s, m)) for b, s, m in _grid(config)])


def _bench(config, name: str):
    if name not in _BENCHES:
        from unlearn.benchmarks import BENCHMARKS

        gate = config.stash[GATE]
        real = gate["model"] != "tiny-qwen3"
        _BENCHES[name] = BENCHMARKS.get(name)(gate["model"], data_dir=gate["data_dir"] if real else None,
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


def test_checkpoint(key, checkpoint_row, request):
    """One row of a [BENCHMARK.checkpoint] table on the checkpoint's evaluation: decided from the metric's interval
    where it has one (accuracy), else from its value; an interval that straddles the bar is inconclusive. A row only
    a cell has (measured against ``--unlearn-target`` and ``--unlearn-gold``) is decided as a method's row is."""
    from unlearn.gate.verdicts import FAIL, INCONCLUSIVE, decide, verdict

    benchmark, split = key
    name, direction, bound = checkpoint_row
    gate = request.config.stash[GATE]
    result = _evaluation(request.config, benchmark, split)
    judged = result.get("judged")
    metrics = {**result["metrics"], **(judged["metrics"] if judged else {}), **(judged["summary"] if judged else {})}
    if name not in metrics or metrics[name] is None or metrics[name] != metrics[name]:
        hint = (" (the rows a cell has, such as forget_efficacy, need --unlearn-target and --unlearn-gold)"
                if _judged(benchmark) and not judged else "")
        pytest.fail(f"{gate['source']}: {benchmark}.checkpoint.{name}: the evaluation has "
                    f"{'no such metric' if name not in metrics else repr(metrics[name])}; its metrics: "
                    f"{', '.join(sorted(metrics))}{hint}", pytrace=False)
    if judged and name not in result["metrics"]:  # a cell's row: decided as a method's row is
        v = verdict({**judged, "method": "checkpoint", "split": split}, name, direction, bound)
        outcome = v.outcome
        why = f"checkpoint on {benchmark}/{split} against target {gate['target']} and gold {gate['gold']}: {v.why}"
    else:
        value, interval = float(metrics[name]), checkpoint_interval(result, name)
        outcome = decide(value, interval, direction, bound)
        shown = f"{name}={value:.4g}" + (f" [{interval[0]:.4g}, {interval[1]:.4g}]" if interval else " (no interval)")
        why = f"checkpoint on {benchmark}/{split}: {shown} (want {direction} {bound})" \
            + (": the interval straddles the bar" if outcome == INCONCLUSIVE else "")
    if outcome == INCONCLUSIVE:
        pytest.skip(f"inconclusive: {why}")
    assert outcome != FAIL, why
