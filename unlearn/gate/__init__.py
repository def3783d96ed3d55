"""Gate an unlearning method from its own repository: a pytest plugin of the installed package.

``pytest -p unlearn.gate -m tofu --unlearn-methods my_method`` (in any folder, after ``pip install
'unlearn-eval[gate]'`` and an install of the package whose ``unlearn.methods`` entry point registers
``my_method``) runs every benchmark x split cell of each named method on the tiny tier (``--unlearn-model`` for
another model), with this suite's verdict rules (:mod:`unlearn.gate.verdicts`: decided from 95% intervals,
inconclusive reported as such, a retain floor) against the default bar, or against the rows of the repository's
expectations file (:mod:`unlearn.gate.expectations`). Each cell's rounded metrics are a syrupy snapshot in the
repository's ``__snapshots__/unlearn/`` (``--snapshot-update`` records them), compared within the tier's measured
seed spread, so a metric regression shows as a snapshot diff in a pull request.

``--unlearn-checkpoint MODEL`` (``--unlearn-adapter DIR``) gates an already-unlearned model without unlearning:
each ``[BENCHMARK.checkpoint]`` table of the expectations file holds bars on ``unlearn eval``'s metrics of that
benchmark (e.g. ``[wmdp.checkpoint] wmdp_bio_acc = "<= 0.3"``, ``mmlu_acc = ">= 0.5"``). An accuracy row is decided
from its bootstrap interval over questions; any other metric, which has no interval here, on its value. With
``--unlearn-target MODEL --unlearn-gold MODEL`` (the model before unlearning and one trained without the forget set)
a TOFU or MUSE table may also hold the rows a cell has (``forget_efficacy``, ``retain_performance``, ``mia_gap``,
``forget_quality``, ``privleak``, ...): the three models are evaluated on the same rows and each row is decided as
a method's row is (:func:`unlearn.gate.verdicts.verdict`: intervals, the retain floor). The per-question logs go to
``unlearn-logs/`` in the rootdir (``--unlearn-logs``).

The benchmarks are pytest markers (``-m tofu``, ``-m "muse or wmdp"``); ``-k forget01`` picks splits. Without
``--unlearn-methods`` or ``--unlearn-checkpoint`` the plugin adds no tests."""

from __future__ import annotations

from pathlib import Path

import pytest

GATE = pytest.StashKey[dict]()
BENCHMARK_MARKS = ("tofu", "muse", "wmdp", "unsafe")  # markers of an inactive run (an active one reads the registry)


def pytest_addoption(parser):
    g = parser.getgroup("unlearn gate", "unlearn.gate: judge your unlearning method on the suite's benchmarks")
    g.addoption("--unlearn-methods", default=None, metavar="NAME[,NAME]",
                help="the registered methods (an unlearn.methods entry point) to run on every benchmark x split cell")
    g.addoption("--unlearn-model", default="tiny-qwen3", metavar="MODEL",
                help="preset, hub id or folder (default tiny-qwen3, the tier the snapshots and bars describe)")
    g.addoption("--unlearn-expectations", default=None, metavar="FILE",
                help="the rows to hold each method to (default: unlearn-expectations.toml in the rootdir, else its "
                     "pyproject.toml's [tool.unlearn.expectations], else the default bar)")
    g.addoption("--unlearn-set", action="append", default=[], metavar="METHOD.FIELD=VALUE",
                help="a method setting (as `unlearn bench --set`); Nx is N times the tier's unlearning lr, e.g. "
                     "my_method.lr=3x")
    g.addoption("--unlearn-data-dir", default=None, metavar="DIR",
                help="benchmark data folder for a real model (default: $UNLEARN_DATA_DIR)")
    g.addoption("--unlearn-checkpoint", default=None, metavar="MODEL",
                help="gate an already-unlearned model (a folder, preset or hub id) without unlearning: the rows of "
                     "each [BENCHMARK.checkpoint] table of the expectations file, on `unlearn eval`'s metrics")
    g.addoption("--unlearn-adapter", default=None, metavar="DIR", help="a LoRA adapter applied on the checkpoint")
    g.addoption("--unlearn-target", default=None, metavar="MODEL",
                help="with --unlearn-gold: the checkpoint's model before unlearning (TOFU and MUSE rows such as "
                     "forget_efficacy are measured against it)")
    g.addoption("--unlearn-gold", default=None, metavar="MODEL",
                help="with --unlearn-target: a model trained without the forget set (the reference of forget "
                     "efficacy, Forget Quality, mia_gap, PrivLeak)")
    g.addoption("--unlearn-protocol", default="full", choices=["full", "reduced"],
                help="the checkpoint's evaluation protocol (default full)")
    g.addoption("--unlearn-max-rows", type=int, default=None, metavar="N",
                help="the checkpoint's evaluation on the first N rows of every set (a quick look)")
    g.addoption("--unlearn-logs", default=None, metavar="DIR",
                help="where the checkpoint's per-question logs go (default: unlearn-logs/ in the rootdir)")


def pytest_load_initial_conftests(early_config, parser, args):
    """The tiny tier's numerics pins, before anything imports torch (``unlearn.numerics``). With
    ``--unlearn-methods`` or ``--unlearn-checkpoint`` (and no ``--confcutdir`` of the user's), conftest files are
    read up to this package's folder, not above it: the gate's test module lives here, and the folders above an
    installed package (or a checkout of this project) hold no conftest of the user's repository."""
    from unlearn.numerics import pin_numerics

    pin_numerics()
    ns = early_config.known_args_namespace
    active = getattr(ns, "unlearn_methods", None) or getattr(ns, "unlearn_checkpoint", None)
    if active and not any(a == "--confcutdir" or a.startswith("--confcutdir=") for a in args):
        ns.confcutdir = str(Path(__file__).resolve().parent)


def pytest_configure(config):
    names = config.getoption("--unlearn-methods")
    checkpoint = config.getoption("--unlearn-checkpoint")
    marks = BENCHMARK_MARKS
    if names or checkpoint:  # the registry (a benchmark package of the user's included), after the numerics pins
        from unlearn.benchmarks import BENCHMARKS

        marks = tuple(BENCHMARKS.names())
    for mark in marks:
        config.addinivalue_line("markers", f"{mark}: the {mark} cells of unlearn.gate")
    if not names and not checkpoint:
        return
    import os

    from unlearn.gate.expectations import CHECKPOINT, ExpectationsError, load_expectations
    from unlearn.methods import method_names, parse_overrides, validate_overrides
    from unlearn.numerics import set_threads

    set_threads()
    methods = [m.strip() for m in (names or "").split(",") if m.strip()]
    known = method_names()
    unknown = [m for m in methods if m not in known]
    if unknown:
        raise pytest.UsageError(f"--unlearn-methods: {', '.join(unknown)} is not a registered method (is its package "
                                f"installed, with an unlearn.methods entry point?); registered: {', '.join(known)}")
    try:
        overrides = parse_overrides(config.getoption("--unlearn-set"))
        # "Nx": N times the tier's unlearning lr (resolved per benchmark when a cell runs), as in the tier's settings
        validate_overrides({m: {k: "1" if _multiple(v) else v for k, v in f.items()} for m, f in overrides.items()})
    except (ValueError, KeyError) as err:
        raise pytest.UsageError(f"--unlearn-set: {err.args[0] if err.args else err}") from None
    try:
        rows, source = load_expectations(config.getoption("--unlearn-expectations"), Path(config.rootpath), known)
    except ExpectationsError as err:
        raise pytest.UsageError(str(err)) from None
    if checkpoint and not any(m == CHECKPOINT for _, m in rows):
        raise pytest.UsageError(f"--unlearn-checkpoint: {source or 'no expectations file'} has no [BENCHMARK.checkpoint] "
                                "table: the bars a checkpoint is held to are yours, e.g. [wmdp.checkpoint] "
                                'wmdp_bio_acc = "<= 0.3" and mmlu_acc = ">= 0.5" in unlearn-expectations.toml')
    refs = {k: config.getoption(f"--unlearn-{k}") for k in ("target", "gold")}
    if (refs["target"] is None) != (refs["gold"] is None):
        given = "--unlearn-target" if refs["target"] else "--unlearn-gold"
        raise pytest.UsageError(f"{given}: --unlearn-target and --unlearn-gold go together (the model before "
                                "unlearning and one trained without the forget set)")
    if refs["target"] and not checkpoint:
        raise pytest.UsageError("--unlearn-target/--unlearn-gold: they are the references of --unlearn-checkpoint "
                                "(a method's cells train their own)")
    max_rows = config.getoption("--unlearn-max-rows")
    if max_rows is not None and max_rows < 1:
        raise pytest.UsageError(f"--unlearn-max-rows {max_rows}: must be an integer >= 1")
    config.stash[GATE] = {"methods": methods, "rows": rows, "source": source, "overrides": overrides,
                          "model": config.getoption("--unlearn-model"),
                          "data_dir": config.getoption("--unlearn-data-dir") or os.environ.get("UNLEARN_DATA_DIR"),
                          "snapshots": str(Path(config.rootpath) / "__snapshots__" / "unlearn"),
                          "checkpoint": checkpoint, "adapter": config.getoption("--unlearn-adapter"), **refs,
                          "protocol": config.getoption("--unlearn-protocol"), "max_rows": max_rows,
                          "logs": config.getoption("--unlearn-logs") or str(Path(config.rootpath) / "unlearn-logs")}
    here = str(Path(__file__).with_name("test_gate.py"))
    if here not in config.args:
        config.args.append(here)  # the gate's tests, collected beside whatever else the command line names


def _multiple(value: str) -> bool:
    return value.endswith("x") and value[:-1].replace(".", "", 1).isdigit()


def pytest_report_header(config):
    gate = config.stash.get(GATE, None)
    if gate:
        what = [f"methods {', '.join(gate['methods'])} on {gate['model']}"] if gate["methods"] else []
        what += [f"checkpoint {gate['checkpoint']}" + (f" + {gate['adapter']}" if gate["adapter"] else "")
                 + (f" against target {gate['target']} and gold {gate['gold']}" if gate["target"] else "")] \
            if gate["checkpoint"] else []
        return f"unlearn.gate: {'; '.join(what)}; expectations: {gate['source'] or 'the default bar'}"
    return None
