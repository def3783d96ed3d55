"""Every option of every subcommand has a declared type (unlearn/options.py), and every command line ends in one
usage line (exit 2) before any model is loaded or file written, or gets past the checks: tried on generated
command lines of every subcommand, and on the examples that used to start work."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import unlearn.cli
from unlearn.cli import main, parser
from unlearn.options import OptionType, option_name, subcommands


class _Started(BaseException):
    """Raised where a subcommand's work would start: the command line got past every check."""


class _ModelLoaded(BaseException):
    """Raised if anything loads a model."""


def _forbid_models(mp: pytest.MonkeyPatch) -> None:
    import unlearn.benchmarks.base
    import unlearn.eval_job
    import unlearn.models
    import unlearn.models.loading

    def load(*_a, **_k):
        raise _ModelLoaded

    for module, name in ((unlearn.models, "load_model"), (unlearn.models.loading, "load_model"),
                         (unlearn.benchmarks.base, "load_model"), (unlearn.eval_job, "load_for_eval")):
        mp.setattr(module, name, load)


def _declared(action) -> bool:
    return isinstance(action.type, OptionType) or action.choices is not None or action.nargs == 0  # nargs 0: a flag


# ---------------------------------------------------------------- the declaration itself
def test_every_option_of_every_subcommand_has_a_declared_type():
    """A new option without a type from unlearn/options.py (or choices, or a flag) fails here: `type=int` would
    take -1 rows, no type at all a folder that does not exist."""
    undeclared = [f"unlearn {name} {option_name(a)}" for name, sub in subcommands(parser()).items()
                  for a in sub._actions if not _declared(a)]
    assert undeclared == []


def test_every_default_is_a_value_of_its_declared_type():
    """argparse parses a string default with the option's type; the others are checked here (0.9, 0, 1, ...)."""
    for name, sub in subcommands(parser()).items():
        for a in sub._actions:
            if isinstance(a.type, OptionType) and a.default is not None and not isinstance(a.default, str):
                assert a.type(str(a.default)) == a.default, (name, option_name(a))


def test_the_generated_command_lines_cover_every_option_of_every_subcommand():
    """An option or subcommand added without a line in SPEC below fails here, so the property test draws it."""
    options = {name: {a.dest for a in sub._actions if a.dest != "help"} for name, sub in subcommands(parser()).items()}
    assert {k: v for k, v in options.items() if v} == {name: {_dest(name, f) for f in spec} for name, spec in SPEC.items()}


def test_parsing_imports_no_torch():
    """The types run before the tiny tier's numerics pins, which must come before torch (unlearn/numerics.py)."""
    code = ("import sys; from unlearn.cli import parser; "
            "parser().parse_args(['bench', '--methods', 'npo', '--set', 'npo.beta=0.2', '--device', 'cpu', '--seed', '1']); "
            "parser().parse_args(['eval', '--benchmark', 'wmdp', '--subjects', 'bio', '--model', 'Qwen/Qwen3-4B']); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------- the examples that used to start work
def _run(argv, monkeypatch, capsys, where: tuple[object, str]) -> tuple[int, str]:
    """main(argv) with the work at ``where`` (module, name) replaced by _Started and every model load forbidden."""
    _forbid_models(monkeypatch)
    monkeypatch.setattr(*where, lambda *_a, **_k: (_ for _ in ()).throw(_Started()))
    code = main(argv)
    return code, capsys.readouterr().err


def test_eval_max_rows_below_one_is_refused_before_any_work(monkeypatch, capsys):
    import unlearn.eval_job

    code, err = _run(["eval", "--benchmark", "tofu", "--split", "forget01", "--model", "tiny-qwen3", "--max-rows", "-1"],
                     monkeypatch, capsys, (unlearn.eval_job, "run_eval"))
    assert code == 2 and err == "unlearn: error: argument --max-rows/--max_rows: -1: must be an integer >= 1\n"


def test_eval_data_dir_that_does_not_exist_is_refused(monkeypatch, capsys):
    import unlearn.eval_job

    code, err = _run(["eval", "--benchmark", "muse", "--model", "tiny-qwen3", "--data-dir", "/nonexistent"],
                     monkeypatch, capsys, (unlearn.eval_job, "run_eval"))
    assert code == 2 and err == "unlearn: error: argument --data-dir/--data_dir: /nonexistent: does not exist\n"


def test_tune_retain_bound_above_one_is_refused(monkeypatch, capsys):
    """Retain performance is the model's retain utility over the target's: a bound of 7 no setting meets."""
    import unlearn.tune

    code, err = _run(["tune", "--retain-min", "7", "--methods", "npo"], monkeypatch, capsys, (unlearn.tune, "run_tune"))
    assert code == 2 and err == "unlearn: error: argument --retain-min/--retain_min: 7: must be in [0, 1]\n"


TINY = "tiny-qwen3 is the tiny tier, trained and evaluated on generated data"


@pytest.mark.parametrize("argv,why", [
    (["eval", "--benchmark", "muse", "--model", "tiny-qwen3"], TINY),
    (["eval", "--benchmark", "unsafe", "--model", "tiny-qwen3", "--split", "synthetic"], TINY),
    (["bench", "--benchmarks", "tofu", "--methods", "npo", "--model", "tiny-qwen3", "--output_dir", "{tmp}/out"], TINY),
    (["bench", "--benchmarks", "tofu", "--methods", "npo", "--model", "tiny-qwen3", "--data", "synthetic",
      "--output_dir", "{tmp}/out"], "--data synthetic generates the data"),
    (["tune", "--methods", "npo", "--model", "tiny-qwen3", "--out", "{tmp}/tuning.json"], TINY),
    (["export", "tofu/npo/forget01", "--model", "tiny-qwen3", "--out", "{tmp}/exported"], TINY),
], ids=["eval-muse", "eval-unsafe", "bench", "bench-synthetic", "tune", "export"])
def test_a_data_folder_the_run_reads_nothing_from_is_an_error(argv, why, tmp_path, monkeypatch, capsys):
    """Generated data: a --data-dir the run never opens is named, with the data it used instead and why."""
    import unlearn.bench
    import unlearn.export
    import unlearn.tune

    data = tmp_path / "data"
    (data / "tofu").mkdir(parents=True)
    (data / "tofu" / "forget01.json").write_text("{}")
    _forbid_models(monkeypatch)
    for module, name in ((unlearn.bench, "compute_cell"), (unlearn.tune, "run_tune"), (unlearn.export, "export_cell")):
        monkeypatch.setattr(module, name, lambda *_a, **_k: (_ for _ in ()).throw(_Started()))
    argv = [a.format(tmp=tmp_path) for a in argv] + ["--data-dir", str(data)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"unlearn: error: --data-dir {data}: this run reads nothing under it (its data: ") and \
        f"); {why}; leave --data-dir out" in err and err.count("\n") == 1, err
    assert not (tmp_path / "tuning.json").exists() and not (tmp_path / "exported").exists()


def test_a_data_folder_the_run_reads_is_accepted(tmp_path, monkeypatch, capsys):
    """WMDP's evaluation reads its questions from the folder whatever the tier: it gets to loading the model."""
    folder = tmp_path / "data" / "wmdp"
    folder.mkdir(parents=True)
    (folder / "bio_questions.json").write_text(json.dumps([{"question": "Which?", "choices": ["a", "b", "c", "d"],
                                                             "answer": 1}]))
    import unlearn.eval_job

    with pytest.raises(_Started):
        _run(["eval", "--benchmark", "wmdp", "--subjects", "bio", "--model", "tiny-qwen3",
              "--data-dir", str(tmp_path / "data")], monkeypatch, capsys, (unlearn.eval_job, "load_for_eval"))


# ---------------------------------------------------------------- generated command lines
# Per subcommand, per option: values to draw ("@name": a path of the `paths` fixture) and which are valid, given
# the other options drawn (a dict flag -> value). "" stands for the positional arguments' flags.
def _among(*valid):
    return lambda v, chosen: v in valid


def _cuda() -> set[str]:
    import torch

    return {"cuda", "cuda:0"} if torch.cuda.is_available() else set()


MODEL = (["tiny-qwen3", "smollm2-135m", "Qwen/Qwen3-4B", "@model", "tiny-qwen", "@missing", "@file", "@empty", "a b/c",
          "/x/y/z", ""], _among("tiny-qwen3", "smollm2-135m", "Qwen/Qwen3-4B", "@model"))
DEVICE = (["auto", "cpu", "cuda", "cuda:0", "cuda:99", "gpu", "", "CPU"], lambda v, c: v in {"auto", "cpu"} | _cuda())
PRECISION = (["auto", "fp32", "bf16", "fp16"], _among("auto", "fp32", "bf16"))
DATA_DIR = (["@folder", "@empty", "@missing", "@file"], _among("@folder", "@empty"))
QUANT = (["4bit", "8bit"], _among("4bit"))
PROTOCOL = (["full", "reduced", "fast"], _among("full", "reduced"))  # standard: WMDP's (its benchmark decides)
COMPAT = (["tofu", "open-unlearning", "ou"], _among("tofu", "open-unlearning"))
POSITIVE = (["1", "7", "0", "-2", "x", "2.5", ""], _among("1", "7"))
NON_NEGATIVE = (["0", "3", "-1", "x", "1.5", ""], _among("0", "3"))
SETTING = (["npo.beta=0.2", "rmu.alpha=100", "npo.beta=-1", "nope.lr=1", "npo.beta", "npo.nope=1", "iwap.p=1.5"],
           _among("npo.beta=0.2", "rmu.alpha=100"))
TUNED = (["@tuned", "@bad_tuned", "@missing", "@folder"], _among("@tuned"))
FLAG = ([None], _among(None))
TRACKERS = (["mlflow", "wandb", "mlflow,wandb", "tensorboard", "", "mlflow,mlflow"],
            lambda v, c: _listed({"mlflow", "wandb"})(v, c))  # both are test extras, so installed here


def _names(v: str) -> list[str]:
    return [x.strip() for x in v.split(",") if x.strip()]


def _listed(valid: set[str]):
    """A comma-separated list: at least one name, none twice, each in ``valid``."""
    return lambda v, chosen: bool(_names(v)) and len(set(_names(v))) == len(_names(v)) and set(_names(v)) <= valid


def _registry(kind: str) -> set[str]:
    from unlearn.benchmarks import BENCHMARKS
    from unlearn.methods import method_names

    if kind == "methods":
        return set(method_names())
    if kind == "benchmarks":
        return set(BENCHMARKS.names())
    return {s for b in BENCHMARKS.names() for s in BENCHMARKS.get(b).splits}


def _eval_split(v, chosen) -> bool:
    from unlearn.benchmarks import BENCHMARKS

    b = chosen.get("--benchmark", "tofu")
    return b in BENCHMARKS and v in BENCHMARKS.get(b).splits


def _tunable(v, chosen) -> bool:
    from unlearn.tune import default_grids

    grid = {"npo"} if chosen.get("--grid") == "@grid" else set(default_grids())
    return _listed(grid)(v, chosen)


def _reference(partner: str):
    """--target / --gold of `unlearn eval`: a model, given with its partner, on a benchmark that judges (tofu, muse)."""
    return (MODEL[0], lambda v, c: MODEL[1](v, c) and partner in c and c.get("--benchmark", "tofu") in ("tofu", "muse"))


def _ray(ok):
    return lambda v, chosen: chosen.get("--executor") == "ray" and ok(v, chosen)


def _local(ok):
    return lambda v, chosen: chosen.get("--executor", "local") == "local" and ok(v, chosen)


SPEC: dict[str, dict[str, tuple[list, object]]] = {
    "score": {"": (["What is 2+2?", "", " "], _among("What is 2+2?")), "--model": MODEL, "--device": DEVICE,
              "--max-new-tokens": POSITIVE},
    "tofu-aggregate": {"": (["@folder", "@empty", "@missing", "@file"], _among("@folder", "@empty")),
                       "--retain": DATA_DIR, "--json": FLAG},
    "eval": {"--benchmark": (["tofu", "muse", "wmdp", "unsafe", "tofuu", ""], _among("tofu", "muse", "wmdp", "unsafe")),
             "--split": (["forget01", "forget10", "news", "synthetic", "real", "bio", "forget02", ""], _eval_split),
             "--subjects": (["bio", "bio,mmlu", "chem,cyber", "physics", "bio,bio", ""],
                            lambda v, c: c.get("--benchmark") == "wmdp" and _listed({"bio", "chem", "cyber", "mmlu"})(v, c)),
             "--model": MODEL, "--adapter": (["@adapter", "@empty", "@missing", "@file"], _among("@adapter")),
             "--quant": QUANT, "--protocol": PROTOCOL, "--compat": COMPAT, "--max-rows": POSITIVE,
             "--data-dir": DATA_DIR, "--device": DEVICE, "--precision": PRECISION,
             "--logs": (["@empty", "@new", "@folder", "@file", "@under_file", ""], _among("@empty", "@new", "@folder")),
             "--json": FLAG,
             "--target": _reference("--gold"), "--gold": _reference("--target")},
    "bench": {"--benchmarks": (["tofu", "tofu,muse", "wmdp", "", ",,", "tofu,tofu", "nope"],
                               lambda v, c: _listed(_registry("benchmarks"))(v, c)),
              "--methods": (["npo", "npo,rmu", "retrain", "", "npo,npo", "nope"],
                            lambda v, c: _listed(_registry("methods"))(v, c)),
              "--splits": (["forget01", "news,forget01", "synthetic", "forget02", "", "forget01,forget01"],
                           lambda v, c: _listed(_registry("splits"))(v, c)),
              "--model": MODEL, "--quant": QUANT, "--max_steps": POSITIVE, "--dry_run": FLAG,
              "--output_dir": (["@empty", "@new", "@folder", "@file", "@under_file"], _among("@empty", "@new", "@folder")),
              "--data-dir": DATA_DIR, "--device": DEVICE, "--precision": PRECISION, "--protocol": PROTOCOL,
              "--compat": COMPAT, "--data": (["auto", "real", "synthetic", "hub"], _among("auto", "real", "synthetic")),
              "--seed": NON_NEGATIVE, "--seeds": POSITIVE, "--force": FLAG, "--set": SETTING, "--robustness": FLAG,
              "--tuned": TUNED, "--list-cells": FLAG,
              "--shard": (["0/1", "1/2", "2/2", "half", ""], _among("0/1", "1/2")),
              "--cell": (["tofu-forget01", "a,b", "", "a,a"], _among("tofu-forget01", "a,b")),
              "--executor": (["local", "ray", "slurm"], _among("local", "ray")),
              "--address": (["auto", "127.0.0.1:6379", "a b", ""], _ray(_among("auto", "127.0.0.1:6379"))),
              "--workers": (POSITIVE[0], _local(POSITIVE[1])),
              "--cpus-per-cell": (POSITIVE[0], _ray(POSITIVE[1])),
              "--gpu-fraction": (["0.5", "1", "0", "1.5", "nan", "x"], _ray(_among("0.5", "1"))),
              "--log-to": TRACKERS},
    "log": {"": (["@results", "@results_file", "@file", "@empty", "@missing"], _among("@results", "@results_file", "@file")),
            "--to": TRACKERS},
    "export": {"": (["tofu/npo/forget01", "wmdp/rmu/synthetic", "@cell", "wmdp/npo", "tofu/nope/forget01",
                     "tofu/npo/forget02", "nope/npo/x", "@missing.json"],
                    _among("tofu/npo/forget01", "wmdp/rmu/synthetic", "@cell")),
               "--out": (["@new", "@empty", "@folder", "@file", "@under_file"], _among("@new", "@empty")),
               "--model": MODEL, "--quant": QUANT, "--dry_run": FLAG, "--data-dir": DATA_DIR, "--device": DEVICE,
               "--precision": PRECISION, "--protocol": PROTOCOL, "--seed": NON_NEGATIVE, "--set": SETTING,
               "--tuned": TUNED, "--quiet": FLAG},
    "report": {"": (["@results", "@results_file", "@file", "@empty", "@missing"],
                    _among("@results", "@results_file", "@file")),
               "--out": (["@new.html", "@folder", "@under_file", ""], _among("@new.html"))},
    "tune": {"--benchmark": (["tofu", "muse"], _among("tofu")), "--model": MODEL,
             "--grid": (["@grid", "@bad_grid", "@missing", "@folder"], _among("@grid")),
             "--methods": (["npo", "npo,rmu", "finetune", "retrain", "nope", "", "npo,npo"], _tunable),
             "--split": (["tune", "forget01", "news", "forget02", ""], _among("tune", "forget01")),
             "--retain-min": (["0", "0.9", "1", "7", "-0.1", "nan", "x"], _among("0", "0.9", "1")),
             "--out": (["@new.json", "@tuned", "@folder", "@under_file/t.json", ""], _among("@new.json", "@tuned")),
             "--dry_run": FLAG, "--data-dir": DATA_DIR, "--device": DEVICE, "--precision": PRECISION,
             "--protocol": PROTOCOL, "--compat": COMPAT, "--quiet": FLAG},
}
REQUIRED = {"score": [""], "tofu-aggregate": [""], "export": ["", "--out"], "report": [""], "log": ["", "--to"]}


def _dest(name: str, flag: str) -> str:
    """The dest of ``flag`` ("": the subcommand's positional argument) in subcommand ``name``."""
    for a in subcommands(parser())[name]._actions:
        if (flag and flag in a.option_strings) or (not flag and not a.option_strings):
            return a.dest
    raise KeyError(flag)


@pytest.fixture(scope="module")
def paths(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("options")
    (root / "folder").mkdir()
    (root / "folder" / "inside.txt").write_text("x")
    (root / "empty").mkdir()
    (root / "file").write_text("not a folder")
    for name, files in (("model", {"config.json": "{}"}), ("adapter", {"adapter_config.json": "{}"}),
                        ("results", {"benchmark_results.json": "{}"})):
        (root / name).mkdir()
        for f, text in files.items():
            (root / name / f).write_text(text)
    (root / "tuned.json").write_text(json.dumps({"methods": {"npo": {"chosen": {"beta": "0.5"}}}}))
    (root / "bad_tuned.json").write_text(json.dumps({"methods": {"npo": {"chosen": {"beta": "-1"}}}}))
    (root / "grid.json").write_text(json.dumps({"npo": {"beta": ["0.1", "0.2"]}}))
    (root / "bad_grid.json").write_text(json.dumps({"npo": {"nope": ["1"]}}))
    (root / "cell.json").write_text(json.dumps({"model": {"name": "tiny-qwen3"}}))
    where = {"folder": "folder", "empty": "empty", "file": "file", "missing": "missing", "missing.json": "missing.json",
             "model": "model", "adapter": "adapter", "results": "results", "results_file": "results/benchmark_results.json",
             "tuned": "tuned.json", "bad_tuned": "bad_tuned.json", "grid": "grid.json", "bad_grid": "bad_grid.json",
             "cell": "cell.json", "new": "new/place", "new.html": "new/report.html", "new.json": "new/tuning.json",
             "under_file": "file/sub", "under_file/t.json": "file/sub/t.json"}
    return {"@" + k: str(root / v) for k, v in where.items()} | {"root": str(root)}


@st.composite
def command_lines(draw, name: str):
    """[(flag, symbolic value, garbage or not)] of subcommand ``name`` over SPEC."""
    spec = SPEC[name]
    optional = sorted(f for f in spec if f not in REQUIRED.get(name, [""]))
    flags = draw(st.lists(st.sampled_from(optional), unique=True, max_size=4)) if optional else []
    flags = [f for f in REQUIRED.get(name, []) if draw(st.integers(0, 9)) > 0] + flags  # a required one left out: 1 in 10
    picked = []
    for flag in flags:
        pool = spec[flag][0]
        garbage = pool != [None] and draw(st.integers(0, 19)) == 0
        # half the time the pool's first value (valid where no other option rules it out), so whole lines pass too
        value = draw(st.text(st.characters(blacklist_categories=("Cs",)), max_size=8) if garbage
                     else st.sampled_from(pool[:1]) | st.sampled_from(pool))
        picked.append((flag, value, garbage))
    if name == "report" and picked and picked[0][0] == "" and draw(st.booleans()):
        picked.insert(1, ("", draw(st.sampled_from(spec[""][0])), False))  # RUN_DIR takes several
    return picked


@pytest.mark.parametrize("name", sorted(SPEC))
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_generated_command_lines_end_in_one_usage_line_or_get_past_the_checks(paths, name, data):
    """Valid values of every option pass; an out-of-range number, a missing, unreadable or unwritable path, an
    unknown name or a value another option rules out ends in one `unlearn: error:` line naming the option and
    the value (exit 2), with no model loaded and no file written; garbage ends in one of the two, never a
    traceback and never a run on a value the subcommand cannot honour."""
    picked = data.draw(command_lines(name))
    spec = SPEC[name]
    chosen = {flag: value for flag, value, _ in picked if flag}
    argv = [name]
    for flag, value, _ in picked:
        argv += ([flag] if flag else []) + ([] if value is None else [paths.get(value, value)])
    garbage = any(g for _, _, g in picked)
    missing = [f for f in REQUIRED.get(name, []) if f not in {f for f, _, _ in picked}]
    invalid = [(f, v) for f, v, g in picked if not g and not spec[f][1](v, chosen)]
    before = sorted(Path(paths["root"]).rglob("*"))
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        _forbid_models(mp)
        for cmd in ("cmd_score", "cmd_tofu_aggregate", "cmd_eval", "cmd_bench", "cmd_export", "cmd_report", "cmd_tune", "cmd_log"):
            mp.setattr(unlearn.cli, cmd, lambda args: (_ for _ in ()).throw(_Started()))
        try:
            code = main(argv)
        except _Started:
            code = None
    assert sorted(Path(paths["root"]).rglob("*")) == before  # nothing written
    text = err.getvalue()
    if code is not None:
        assert code == 2 and text.startswith("unlearn: error: ") and text.count("\n") == 1, (argv, text)
    event("garbage" if garbage else "valid" if not invalid and not missing else "invalid")
    if garbage:
        return
    if not invalid and not missing:
        assert code is None, (argv, text)
        return
    assert code == 2, argv
    named = lambda f: f in text if f else any(m in text for m in ("cell", "question", "logdir", "RUN_DIR", "results"))  # noqa: E731
    shown = lambda v: v is None or not v.strip() or paths.get(v, v) in text  # noqa: E731
    assert any(named(f) and shown(v) for f, v in invalid) or any(named(f) for f in missing), (argv, text)
