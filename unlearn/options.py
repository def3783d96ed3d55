"""The declared type of every command-line option, shared by the parsers of every subcommand (``unlearn/cli.py``).

A type turns an option's text into its value, or raises ``ArgumentTypeError`` naming the value and what would be
valid. It may look at the file system but imports no torch: the tiny tier's numerics pins are set after parsing
(``unlearn/numerics.py``). What only a registry (methods, benchmarks, model presets) or another option can judge is
the type's ``check``, which :func:`check_args` runs on every option of the subcommand right after the pins. Either
way a bad value ends in one line, ``unlearn: error: argument --OPTION: ...`` (exit 2), before any model is loaded
or any file written. A data folder that the run then reads nothing from is an error too (:func:`data_dir_read`)."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from unlearn.tiers import is_tiny


class UsageError(Exception):
    """A command line that cannot be run; the message names the option and the value (exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors raise :class:`UsageError` (``unlearn.cli.main`` prints one line)."""

    def error(self, message: str):
        # one line whatever the command line held: a control character in a value (a newline in an unrecognised
        # argument) is shown escaped
        raise UsageError("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


@dataclass(frozen=True)
class OptionType:
    """A declared option type: ``parse`` is argparse's ``type=``; ``check(value, args)``, where a registry or another
    option decides, raises ValueError or KeyError after parsing."""

    name: str
    parse: Callable[[str], Any]
    check: Callable[[Any, argparse.Namespace], None] | None = None

    def __call__(self, text: str):
        try:
            return self.parse(text)
        except OSError as err:  # a path the system refuses (too long, in a folder that cannot be listed)
            raise _bad(text, f"cannot be used ({err.strerror or err})") from None

    def __repr__(self) -> str:
        return self.name


def shown(text: str) -> str:
    """The value as the user sees it; quoted when it is empty or holds spaces or control characters."""
    return text if text and text.isprintable() and not any(c.isspace() for c in text) else repr(text)


def _bad(text: str, why: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{shown(text)}: {why}")


# ---------------------------------------------------------------- numbers
def _integer(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise _bad(text, f"not a whole number (an integer >= {low})") from None
        if value < low:
            raise _bad(text, f"must be an integer >= {low}")
        return value

    return parse


def _real(ok: Callable[[float], bool], what: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise _bad(text, f"not a number ({what})") from None
        if not (math.isfinite(value) and ok(value)):
            raise _bad(text, f"must be {what}")
        return value

    return parse


positive_int = OptionType("positive integer", _integer(1))
non_negative_int = OptionType("non-negative integer", _integer(0))
fraction = OptionType("fraction in (0, 1]", _real(lambda v: 0 < v <= 1, "in (0, 1]"))
proportion = OptionType("proportion in [0, 1]", _real(lambda v: 0 <= v <= 1, "in [0, 1]"))


# ---------------------------------------------------------------- text
def _text(text: str) -> str:
    if not text.strip():
        raise _bad(text, "empty")
    return text


def _token(text: str) -> str:
    if not text or not text.isprintable() or any(c.isspace() for c in text):
        raise _bad(text, "expected one word without spaces")
    return text


nonempty_text = OptionType("text", _text)
token = OptionType("word", _token)


def _device(value: str) -> str:
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise _bad(value, "valid: auto, cpu, cuda or cuda:N")
    return value


def _device_present(value: str, args) -> None:
    if not value.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"{value}: torch sees no CUDA device; use --device cpu or auto")
    index = int(value.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise ValueError(f"{value}: there are {torch.cuda.device_count()} CUDA device(s), cuda:0 to "
                         f"cuda:{torch.cuda.device_count() - 1}")


device = OptionType("device", _device, _device_present)


# ---------------------------------------------------------------- paths (returned as given: outputs record them)
def _path(text: str) -> Path:
    """``~`` expanded as os.path does (an unknown user's ``~name`` stays as written; Path.expanduser raises)."""
    return Path(os.path.expanduser(text))


def _existing(text: str) -> Path:
    if not text:
        raise _bad(text, "an empty path")
    path = _path(text)
    if not path.exists():
        raise _bad(text, "does not exist")
    return path


def _folder(text: str) -> str:
    path = _existing(text)
    if not path.is_dir():
        raise _bad(text, "is a file, not a folder")
    try:
        with os.scandir(path):
            pass
    except OSError as err:
        raise _bad(text, f"cannot be read ({err.strerror})") from None
    return text


def _readable_file(text: str) -> str:
    path = _existing(text)
    if not path.is_file():
        raise _bad(text, "is a folder, not a file" if path.is_dir() else "is not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as err:
        raise _bad(text, f"cannot be read ({err.strerror})") from None
    return text


def _creatable(text: str, path: Path) -> None:
    """``path`` can be made: its nearest existing ancestor is a folder this process may write in."""
    parent = path
    while not parent.exists() and parent.parent != parent:
        parent = parent.parent
    if not parent.is_dir():
        raise _bad(text, f"cannot be created: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _bad(text, f"cannot be created: {parent} is not writable")


def _output_folder(text: str) -> str:
    if not text:
        raise _bad(text, "an empty path")
    path = _path(text)
    if path.exists() and not path.is_dir():
        raise _bad(text, "is a file, not a folder")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise _bad(text, "is not writable")
    _creatable(text, path)
    return text


def _new_folder(text: str) -> str:
    _output_folder(text)
    path = _path(text)
    if path.is_dir() and any(path.iterdir()):
        raise _bad(text, "exists and is not empty; name a new (or empty) folder")
    return text


def _output_file(text: str) -> str:
    if not text:
        raise _bad(text, "an empty path")
    path = _path(text)
    if path.is_dir():
        raise _bad(text, "is a folder; name a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise _bad(text, "is not writable")
    _creatable(text, path.parent)
    return text


folder = OptionType("existing folder", _folder)
readable_file = OptionType("readable file", _readable_file)
output_folder = OptionType("writable folder", _output_folder)
new_folder = OptionType("new or empty folder", _new_folder)
output_file = OptionType("writable file", _output_file)


def _adapter_folder(text: str) -> str:
    _folder(text)
    if not (_path(text) / "adapter_config.json").is_file():
        raise _bad(text, "no adapter_config.json there (a PEFT LoRA folder is expected)")
    return text


def _results(text: str) -> str:
    path = _existing(text)
    if path.is_dir():
        _folder(text)
        if not (path / "benchmark_results.json").is_file():
            raise _bad(text, "holds no benchmark_results.json (an output folder of `unlearn bench` does)")
        return text
    return _readable_file(text)


adapter_folder = OptionType("adapter folder", _adapter_folder)
results = OptionType("results folder or file", _results)


# ---------------------------------------------------------------- models
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def _model_folder(text: str, path: Path) -> str:
    if not path.is_dir():
        raise _bad(text, "is a file; a model is a preset, a folder with config.json or a hub id (org/name)")
    if not (path / "config.json").is_file():
        raise _bad(text, f"model folder {str(path)!r} has no config.json")
    return text


def _bare(name: str) -> bool:
    """A name that is neither a path nor a hub id: a preset (or a folder in the current one)."""
    return "/" not in name and not name.startswith(("~", "."))


def _model(text: str) -> str:
    """As ``unlearn.models.resolve_model_source`` reads it: a preset, an existing folder, or a hub id org/name."""
    _token(text)
    if _bare(text):
        return text  # a preset's name: the registry decides (check)
    path = _path(text)
    if path.exists():
        return _model_folder(text, path)
    if text.startswith(("~", ".", "/")) or text.count("/") != 1:
        raise _bad(text, "no such model folder")
    if not HUB_ID.fullmatch(text):
        raise _bad(text, "not a hub id (org/name of letters, digits, '-', '_', '.')")
    return text


def _preset(value: str, args) -> None:
    if not _bare(value):
        return
    from unlearn.models import PRESETS

    if value in PRESETS:
        return
    if Path(value).exists():
        _model_folder(value, Path(value))
        return
    raise KeyError(PRESETS.unknown_message(value) + "; or a model folder, or a hub id such as Qwen/Qwen3-4B")


model = OptionType("model", _model, _preset)


def _reference(value: str, args) -> None:
    """``unlearn eval --target/--gold``: both given, and a benchmark that judges a model against them."""
    _preset(value, args)
    if (args.target is None) != (args.gold is None):
        raise ValueError(f"{value}: --target and --gold go together (the model before unlearning and one trained "
                         "without the forget set)")
    if not _benchmarks().get(args.benchmark).judges_given_models():
        judged = [b for b in _benchmarks().names() if _benchmarks().get(b).judges_given_models()]
        raise ValueError(f"{value}: --benchmark {args.benchmark} has no comparison with a target and a gold (those "
                         f"that have: {', '.join(judged)})")


reference_model = OptionType("model before unlearning or retrained", _model, _reference)


# ---------------------------------------------------------------- names from the registries
def names_in(text: str) -> list[str]:
    """The names of a comma-separated list (blanks dropped), as the subcommands read it."""
    return [x.strip() for x in text.split(",") if x.strip()]


def _name_list(text: str) -> str:
    names = names_in(text)
    if not names:
        raise _bad(text, "names nothing; give a comma-separated list (or leave the option out for the default)")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _bad(text, f"names {', '.join(twice)} more than once")
    return text


def _one_name(text: str) -> str:
    if not text.strip() or "," in text:
        raise _bad(text, "expected one name")
    return text


def _benchmarks():
    from unlearn.benchmarks import BENCHMARKS

    return BENCHMARKS


def _methods():
    from unlearn.methods import METHODS, method_names

    method_names()  # every method module and plugin imported, so the registry is complete
    return METHODS


def _each_registered(registry: Callable[[], Any]) -> Callable[[str, Any], None]:
    def check(value: str, args) -> None:
        reg = registry()
        for name in names_in(value):
            if name not in reg:
                raise KeyError(reg.unknown_message(name))

    return check


def _any_split(value: str, args) -> None:
    """Each name a split of some registered benchmark (which benchmarks run is ``unlearn.bench.resolve``'s)."""
    reg = _benchmarks()
    known = {b: reg.get(b).splits for b in reg.names()}
    for name in names_in(value):
        if not any(name in v for v in known.values()):
            raise ValueError(f"unknown split {name!r}; valid: " + "; ".join(f"{b}: {', '.join(v)}" for b, v in known.items()))


def _split_of(tuning: bool) -> Callable[[str, Any], None]:
    def check(value: str, args) -> None:
        bench = _benchmarks().get(args.benchmark)
        valid = ([bench.tune_split] if tuning and bench.tune_split else []) + list(bench.splits)
        if value not in valid:
            raise ValueError(f"unknown split {value!r} for {args.benchmark}; valid: {', '.join(valid)}"
                             + (f" ({bench.tune_split}, the default, forgets authors no evaluated split contains)"
                                if tuning and bench.tune_split else ""))

    return check


def _tunable(value: str, args) -> None:
    _each_registered(_methods)(value, args)
    from unlearn.tune import NOT_TUNED, default_grids, load_grids

    grids = load_grids(args.grid) if args.grid else default_grids()
    for name in names_in(value):
        if name not in grids:
            why = "is not tuned (the baseline and the gold)" if name in NOT_TUNED else "has no grid"
            raise ValueError(f"{name} {why}; methods with a grid: {', '.join(grids)}")


def _wmdp_subjects(value: str, args) -> None:
    if args.benchmark != "wmdp":
        raise ValueError(f"{value}: the subjects are WMDP's question sets; --benchmark {args.benchmark} has none")
    from unlearn.benchmarks.wmdp.data import SUBJECTS

    valid = (*SUBJECTS, "mmlu")  # as WmdpBenchmark.eval_inputs reads them
    bad = [s for s in names_in(value) if s not in valid]
    if bad:
        raise ValueError(f"unknown WMDP subject(s) {', '.join(bad)}; valid: {', '.join(valid)}")


benchmark = OptionType("benchmark", _one_name, _each_registered(_benchmarks))
benchmarks = OptionType("benchmarks", _name_list, _each_registered(_benchmarks))
methods = OptionType("methods", _name_list, _each_registered(_methods))
tunable_methods = OptionType("tunable methods", _name_list, _tunable)
splits = OptionType("splits", _name_list, _any_split)
split = OptionType("split of --benchmark", _one_name, _split_of(tuning=False))
tuning_split = OptionType("split of --benchmark or its tuning split", _one_name, _split_of(tuning=True))
subjects = OptionType("WMDP subjects", _name_list, _wmdp_subjects)
cell_keys = OptionType("cell keys", _name_list)  # matched against the grid once it is built (unlearn.bench.select)


# ---------------------------------------------------------------- method settings and the files that hold them
def _setting(text: str) -> str:
    key, sep, _value = text.partition("=")
    method_name, dot, field = key.partition(".")
    if not (sep and dot and method_name.strip() and field.strip()):
        raise _bad(text, "not of the form method.field=value (e.g. npo.beta=0.2)")
    return text


def _setting_valid(value: str, args) -> None:
    from unlearn.methods import parse_overrides, validate_overrides

    validate_overrides(parse_overrides([value]))


def _tuned_valid(value: str, args) -> None:
    from unlearn.methods import validate_overrides
    from unlearn.tune import tuned_overrides

    validate_overrides(tuned_overrides(value))


def _grid_valid(value: str, args) -> None:
    from unlearn.tune import load_grids

    load_grids(value)


def _trackers_installed(value: str, args) -> None:
    from unlearn.trackers import check_available

    for name in names_in(value):
        check_available(name)


trackers = OptionType("trackers", _name_list, _trackers_installed)
setting = OptionType("METHOD.FIELD=VALUE", _setting, _setting_valid)
tuned_file = OptionType("`unlearn tune` output", _readable_file, _tuned_valid)
grid_file = OptionType("grid file", _readable_file, _grid_valid)


def _cell(text: str) -> str:
    if text.endswith(".json"):
        return _readable_file(text)  # a cell file: its fields are read by unlearn.export
    parts = text.split("/")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise _bad(text, "expected BENCHMARK/METHOD/SPLIT (e.g. wmdp/rmu/synthetic) or a cell file (outputs/cells/*.json)")
    return text


def _cell_valid(value: str, args) -> None:
    if value.endswith(".json"):
        return
    bench_name, method, split_name = value.split("/")
    bench = _benchmarks().get(bench_name)
    _each_registered(_methods)(method, args)
    if split_name not in bench.splits:
        raise ValueError(f"unknown split {split_name!r} for {bench_name}; valid: {', '.join(bench.splits)}")


cell = OptionType("BENCHMARK/METHOD/SPLIT or cell file", _cell, _cell_valid)


def shard_of(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"{text}: expected i/N, e.g. 0/4 (the first of 4 shares)") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"{text}: needs N >= 1 and 0 <= i < N")
    return i, n


def _shard(text: str) -> str:
    try:
        shard_of(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


shard = OptionType("i/N", _shard)


def executor_only(kind: OptionType, executor: str) -> OptionType:
    """``kind``, given only with ``--executor {executor}`` (another executor would ignore it)."""
    def check(value, args) -> None:
        if kind.check:
            kind.check(value, args)
        if args.executor != executor:
            raise ValueError(f"{value}: used only with --executor {executor} (this run's executor: {args.executor})")

    return OptionType(f"{kind.name} ({executor})", kind.parse, check)


def ray_only(kind: OptionType) -> OptionType:
    """``kind``, given only with ``--executor ray`` (a local run would ignore it)."""
    return executor_only(kind, "ray")


def local_only(kind: OptionType) -> OptionType:
    """``kind``, given only with ``--executor local`` (Ray places its tasks itself)."""
    return executor_only(kind, "local")


# ---------------------------------------------------------------- after parsing
def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every subcommand's parser by name."""
    # argparse has no public accessor for a parser's actions; the subparsers action maps names to parsers
    return {name: sub for a in parser._actions if isinstance(a.choices, dict) for name, sub in a.choices.items()}


def option_name(action: argparse.Action) -> str:
    return "/".join(action.option_strings) or action.metavar or action.dest


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Run the ``check`` of every option of the chosen subcommand on its value (defaults included), in the order
    the options are declared; the first failure is a UsageError naming the option. Called after the numerics pins:
    the checks read registries, which import torch."""
    for action in subcommands(parser)[args.command]._actions:
        check = getattr(action.type, "check", None)
        value = getattr(args, action.dest, None)
        if check is None or value is None:
            continue
        for item in value if isinstance(value, list) else [value]:
            try:
                check(item, args)
            except (ValueError, KeyError, OSError, argparse.ArgumentTypeError) as err:
                msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
                named = msg if str(item) in msg else f"{shown(str(item))}: {msg}"
                raise UsageError(f"argument {option_name(action)}: {named}") from None


# ---------------------------------------------------------------- a data folder the run does not read
_WATCHED: list[tuple[str, list[str]]] = []  # (a data folder's real path, the files opened under it meanwhile)
_HOOKED = False


def _record_open(event: str, args: tuple) -> None:
    if event != "open" or not _WATCHED:
        return
    try:  # an audit hook that raises would fail the open it watches
        if not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        path = os.path.realpath(os.fsdecode(args[0]))
        for root, opened in _WATCHED:
            if path == root or path.startswith(root.rstrip(os.sep) + os.sep):
                opened.append(path)
    except Exception:  # noqa: BLE001
        return


@contextlib.contextmanager
def data_dir_read(data_dir: str | None, model_name: str, data: str = "auto",
                  sources: Callable[[], list[str]] = list) -> Iterator[None]:
    """Around the step that loads a run's data: when it opened no file under ``data_dir``, a ValueError saying so
    and what the data was instead (``sources()``). Whether the folder was read is observed (Python's audit "open"
    events), not predicted from each benchmark's rules, so every way a run can pass a folder over is caught: the
    tiny tier's generated data, ``--data synthetic``, a folder without the benchmark's files (TOFU's embedded copy,
    MUSE's synthetic stand-in, WMDP's hub)."""
    global _HOOKED
    if data_dir is None:
        yield
        return
    if not _HOOKED:
        sys.addaudithook(_record_open)
        _HOOKED = True
    entry = (os.path.realpath(os.path.expanduser(data_dir)), [])
    _WATCHED.append(entry)
    try:
        yield
    finally:
        _WATCHED.remove(entry)
    if not entry[1]:
        read = "; ".join(sources())
        why = ("--data synthetic generates the data" if data == "synthetic" else
               f"{model_name} is the tiny tier, trained and evaluated on generated data"
               if is_tiny(model_name) and data != "real" else "it holds none of the files this run reads")
        raise ValueError(f"--data-dir {data_dir}: this run reads nothing under it" + (f" (its data: {read})" if read else "")
                         + f"; {why}; leave --data-dir out, or name a folder laid out as "
                         "unlearn/benchmarks/<name>/README.md says")
