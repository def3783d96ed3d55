"""A catalogue of bad command lines: each ends in exit 2 and one line naming the value and what is valid,
before any model is loaded or any output written (docs/errors.md lists them)."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from unlearn.cli import main

# (argv, a piece of the one-line error): the value named, and what would be valid
BAD_BENCH = [
    (["--max_steps", "-3"], "argument --max_steps/--max-steps: -3: must be an integer >= 1"),
    (["--max_steps", "0"], "argument --max_steps/--max-steps: 0: must be an integer >= 1"),
    (["--seed", "-1"], "argument --seed: -1: must be an integer >= 0"),
    (["--methods", ""], "argument --methods: '': names nothing"),
    (["--methods", ",,"], "argument --methods: ,,: names nothing"),
    (["--methods", "npo,npo"], "argument --methods: npo,npo: names npo more than once"),
    (["--splits", "forget01,forget01"], "argument --splits: forget01,forget01: names forget01 more than once"),
    (["--benchmarks", ""], "argument --benchmarks: '': names nothing"),
    (["--benchmarks", "tofu,tofu"], "argument --benchmarks: tofu,tofu: names tofu more than once"),
    (["--methods", "nope"], "nope"),
    (["--splits", "forget02"], "forget02"),
    (["--set", "npo.lr=0"], "npo.lr=0.0: must be > 0"),
    (["--set", "npo.lr=-1e-4"], "npo.lr=-0.0001: must be > 0"),
    (["--set", "npo.beta=-1"], "npo.beta=-1.0: must be > 0"),
    (["--set", "grad_diff.alpha=-0.5"], "grad_diff.alpha=-0.5: must be >= 0"),
    (["--set", "iwap.p=1.5"], "iwap.p=1.5: must be in (0, 1)"),
    (["--set", "iwap.p=0"], "iwap.p=0.0: must be in (0, 1)"),
    (["--set", "iwap.rounds=0"], "iwap.rounds=0: must be >= 1"),
    (["--set", "finetune.epochs=0"], "finetune.epochs=0.0: must be > 0"),
    (["--set", "npo.epochs=-2"], "npo.epochs=-2.0: must be > 0"),  # the shared schedule's field
    (["--set", "npo.nope=1"], "unknown field 'nope' for method 'npo'"),
    (["--set", "nope.lr=1"], "nope"),
    (["--set", "npo.beta=abc"], "npo.beta"),
    (["--set", "npo.beta"], "not of the form method.field=value"),
    (["--shard", "2/2"], "argument --shard: 2/2: needs N >= 1 and 0 <= i < N"),
    (["--shard", "half"], "argument --shard: half: expected i/N"),
]


@pytest.mark.parametrize("argv,expected", BAD_BENCH, ids=[" ".join(a) for a, _ in BAD_BENCH])
def test_bad_bench_input_is_one_clear_line(argv, expected, capsys, tmp_path, monkeypatch):
    import unlearn.bench

    def started(*_):  # a check that lets the input through fails here, not after a whole run
        raise RuntimeError(f"bench {' '.join(argv)} got past validation")

    monkeypatch.setattr(unlearn.bench, "splits_for", started)
    out = tmp_path / "out"
    assert main(["bench", "--output_dir", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unlearn: error: ") and "\n" not in err, err
    assert expected in err, err
    assert not out.exists()  # failed before anything was written


@pytest.mark.parametrize("argv", [["--max_steps", "1.5"], ["--seed", "x"], ["--max_steps", ""]])
def test_non_integer_numbers_are_rejected_by_the_parser(argv, capsys):
    assert main(["bench", *argv]) == 2
    assert argv[0] in capsys.readouterr().err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), max_size=4))
def test_garbage_set_items_never_escape_as_a_traceback(items):
    """Generated --set items: accepted (then validated) or one named error; never another exception."""
    from unlearn.methods import parse_overrides, validate_overrides

    try:
        validate_overrides(parse_overrides(items))
    except (ValueError, KeyError):
        pass


@pytest.mark.parametrize("text,expected", [
    ('{"methods": {"npo": ', "not valid JSON"),
    ('{"methods": {"npo": 5}}', "methods.npo must be an object"),
    ('[1, 2]', "not an `unlearn tune` output"),
    ('{"methods": {"nomethod": {"chosen": {"lr": "1e-3"}}}}', "'nomethod' that are not registered"),
    ('{"methods": {"npo": {"chosen": {"beta": "-1"}}}}', "npo.beta=-1.0: must be > 0"),
], ids=["truncated", "method-not-an-object", "not-an-object", "unknown-method", "out-of-range"])
def test_bad_tuned_file_is_one_line_naming_it(text, expected, capsys, tmp_path, monkeypatch):
    import unlearn.bench

    monkeypatch.setattr(unlearn.bench, "splits_for", lambda *_: (_ for _ in ()).throw(RuntimeError("got past validation")))
    bad = tmp_path / "tuned.json"
    bad.write_text(text)
    assert main(["bench", "--tuned", str(bad), "--output_dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expected in err, err
    if expected != "npo.beta=-1.0: must be > 0":
        assert str(bad) in err
    assert not (tmp_path / "out").exists()


def test_truncated_data_file_names_file_and_row(capsys, tmp_path, real_data_dir):
    """A TOFU folder whose forget01 file was cut short: the file and row, not a fallback to the embedded copy."""
    folder = tmp_path / "data" / "tofu"
    folder.mkdir(parents=True)
    for f in (real_data_dir / "tofu").glob("*.json"):
        (folder / f.name).write_bytes(f.read_bytes())
    cut = folder / "forget01_perturbed.json"
    cut.write_bytes(cut.read_bytes()[:3000])
    assert main(["eval", "--model", "tiny-qwen3", "--data-dir", str(tmp_path / "data"), "--max-rows", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "forget01_perturbed.json, row 3: malformed JSON" in err, err


def test_model_folder_without_weights_is_named(capsys, tmp_path):
    (tmp_path / "m").mkdir()
    assert main(["eval", "--model", str(tmp_path / "m"), "--max-rows", "1"]) == 2
    assert f"model folder '{tmp_path / 'm'}' has no config.json" in capsys.readouterr().err


# ---------------------------------------------------------------- generated garbage
BENCH_FLAGS = ["--methods", "--splits", "--benchmarks", "--max_steps", "--seed", "--set", "--tuned", "--precision",
               "--data", "--protocol", "--compat", "--quant", "--model", "--dry_run", "--robustness", "--no-robustness",
               "--force", "--device"]
VALUES = ["", ".", "/", "0", "-1", "1", "1e9", "nan", "npo", "npo,npo", "tofu", "forget01", "news", "npo.lr=0",
          "npo.beta=nan", "iwap.p=inf", "x=1", "no-such-file.json", "auto", "full", "standard", "4bit", "cuda:9"]


class _Validated(Exception):
    """Raised where a real run would start: the input got through validation."""


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(BENCH_FLAGS),
                          st.one_of(st.sampled_from(VALUES), st.text(alphabet=st.characters(blacklist_categories=("Cs",)),
                                                                      max_size=8))), max_size=4).map(
    lambda pairs: [x for pair in pairs for x in pair]))
@example(argv=["--dry_run", "\n"])  # found by a draw: argparse's "unrecognized arguments" held the newline (2 lines)
def test_generated_bench_command_lines_end_in_a_named_error_or_a_run(argv):
    """Any command line: argparse's usage error, one `unlearn: error:` line (exit 2), or a run that starts;
    never a traceback."""
    import contextlib
    import io
    import tempfile

    import unlearn.bench

    def started(*_):
        raise _Validated

    err = io.StringIO()
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        mp.setattr(unlearn.bench, "check_output_dir", started)
        with contextlib.redirect_stderr(err):
            try:
                code = main(["bench", "--output_dir", tmp + "/out", *argv])
            except _Validated:
                return
            except SystemExit as exc:  # argparse: usage error (2) or --help (0)
                assert exc.code in (0, 2)
                return
    assert code == 2
    assert err.getvalue().startswith("unlearn: error: ") and err.getvalue().count("\n") == 1, err.getvalue()


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                       lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                           st.sampled_from(["question", "answer", "perturbed_answer", "paraphrased_answer", "text",
                                            "prompt", "gt", "choices", "x"]), inner, max_size=5),
                       max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(st.one_of(JSONISH.map(lambda v: __import__("json").dumps(v)),
                 st.text(alphabet='[]{}",:0123456789.-eE nulltrueNaN\nabc', max_size=60)))
def test_generated_data_files_give_data_errors_only(text):
    """Every data parser, fed generated JSON (NaN included) or JSON-looking garbage: rows, or a DataError
    naming the file; nothing else escapes."""
    import json
    from pathlib import Path

    from unlearn.data import DataError
    from unlearn.benchmarks.muse import data as muse
    from unlearn.benchmarks.tofu import data as tofu
    from unlearn.benchmarks.wmdp import data as wmdp

    path = Path("garbage.json")

    def tofu_rows():
        rows = tofu.parse_json_text(path, text)
        return tofu.parse_rows(path, rows, perturbed=True, paraphrased=True)

    def wmdp_rows():
        try:
            rows = json.loads(text)
        except json.JSONDecodeError:
            return None
        return wmdp.parse_mcq_rows(path, rows, "bio")

    parsers = [tofu_rows, lambda: tofu._idk_lines(path, text), wmdp_rows,
               lambda: wmdp.parse_mmlu_csv(path, text, "anatomy")]
    parsers += [lambda p=p: p(path, muse._load_json_array(path, text)) for p in (muse.parse_texts, muse.parse_qa,
                                                                                muse.parse_verbmem)]
    for parse in parsers:
        try:
            parse()
        except DataError as err:
            assert str(path) in str(err)


@pytest.mark.parametrize("field,value", [("answer", float("nan")), ("question", None), ("perturbed_answer", [1.5])])
def test_non_text_in_a_data_field_names_file_row_and_field(tmp_path, field, value):
    import json

    from unlearn.data import DataError
    from unlearn.benchmarks.tofu.data import parse_json_text, parse_rows

    row = {"question": "Q?", "answer": "A.", "paraphrased_answer": "A", "perturbed_answer": ["B"], field: value}
    path = tmp_path / "forget01_perturbed.json"
    path.write_text(json.dumps([row, row]))  # Python's json writes and reads NaN
    with pytest.raises(DataError, match=rf"forget01_perturbed.json, row 0, field '{field}'"):
        parse_rows(path, parse_json_text(path, path.read_text()), perturbed=True, paraphrased=True)
