"""A catalogue of bad command lines: each ends in exit 2 and one line naming the value and what is valid,
before any model is loaded or any output written (issue 34's first part; docs/results.md lists them)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn.cli import main

# (argv, a piece of the one-line error): the value named, and what would be valid
BAD_BENCH = [
    (["--max_steps", "-3"], "--max_steps -3: must be a positive"),
    (["--max_steps", "0"], "--max_steps 0: must be a positive"),
    (["--seed", "-1"], "--seed -1: must be a non-negative"),
    (["--methods", ""], "--methods names nothing"),
    (["--methods", ",,"], "--methods names nothing"),
    (["--methods", "npo,npo"], "--methods names npo more than once"),
    (["--splits", "forget01,forget01"], "--splits names forget01 more than once"),
    (["--benchmarks", ""], "--benchmarks names nothing"),
    (["--benchmarks", "tofu,tofu"], "--benchmarks names tofu more than once"),
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
]


@pytest.mark.parametrize("argv,expected", BAD_BENCH, ids=[" ".join(a) for a, _ in BAD_BENCH])
def test_bad_bench_input_is_one_clear_line(argv, expected, capsys, tmp_path):
    out = tmp_path / "out"
    assert main(["bench", "--output_dir", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unlearn: error: ") and "\n" not in err, err
    assert expected in err, err
    assert not out.exists()  # failed before anything was written


@pytest.mark.parametrize("argv", [["--max_steps", "1.5"], ["--seed", "x"], ["--max_steps", ""]])
def test_non_integer_numbers_are_rejected_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2 and argv[0] in capsys.readouterr().err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12), max_size=4))
def test_garbage_set_items_never_escape_as_a_traceback(items):
    """Generated --set items: accepted (then validated) or one named error; never another exception."""
    from unlearn.methods import parse_overrides, validate_overrides

    try:
        validate_overrides(parse_overrides(items))
    except (ValueError, KeyError):
        pass
