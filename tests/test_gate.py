"""The gate plugin's parts that need no model: a repository's expectation rows (read, and refused with the file and
the key named) and what ``pytest -p unlearn.gate`` collects in a folder of its own (every benchmark x split cell of
the named methods, marked by benchmark). evals/test_gate_plugin.py runs it on an example repository for real."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from unlearn.gate.expectations import (DEFAULT_EXPECTATIONS, MIA_ROWS, ExpectationsError, load_expectations,
                                       parse_rows, rows_for)

METHODS = ["npo", "rmu"]


def test_rows_of_a_file_replace_the_default_bar_on_their_benchmark_only(tmp_path):
    (tmp_path / "unlearn-expectations.toml").write_text('[tofu.npo]\nforget_efficacy = ">= 0.5"\nmia_gap = "<=0.2"\n')
    rows, source = load_expectations(None, tmp_path, METHODS)
    assert source == str(tmp_path / "unlearn-expectations.toml")
    assert rows_for(rows, "tofu", "npo") == [("forget_efficacy", ">=", 0.5), ("mia_gap", "<=", 0.2)]
    assert rows_for(rows, "muse", "npo") == rows_for(rows, "tofu", "rmu") == DEFAULT_EXPECTATIONS + MIA_ROWS
    assert rows_for(rows, "unsafe", "npo")[-2][0] == "over_refusal"


def test_rows_from_pyproject_and_none_at_all(tmp_path):
    assert load_expectations(None, tmp_path, METHODS) == ({}, None)
    (tmp_path / "pyproject.toml").write_text('[tool.unlearn.expectations.wmdp.rmu]\nforget_efficacy = ">= 0.4"\n')
    rows, source = load_expectations(None, tmp_path, METHODS)
    assert rows == {("wmdp", "rmu"): [("forget_efficacy", ">=", 0.4)]} and "[tool.unlearn.expectations]" in source


@pytest.mark.parametrize("text,named", [
    ('[tofu.npo]\nforget_efficacy = "> 0.5"\n', "tofu.npo.forget_efficacy = '> 0.5'"),
    ('[tofu.npo]\nforget_efficacy = ">= nan"\n', "tofu.npo.forget_efficacy"),
    ('[tofu.npo]\nforget_efficacy = 0.5\n', "tofu.npo.forget_efficacy = 0.5"),
    ('[tofu.nope]\nforget_efficacy = ">= 0.5"\n', "[tofu.nope]: 'nope' is not a registered method"),
    ('[tofuu.npo]\nforget_efficacy = ">= 0.5"\n', "[tofuu]: unknown benchmark"),
    ('[tofu.npo]\n', "[tofu.npo]: expected rows"),
    ('[tofu\n', "not valid TOML"),
])
def test_a_bad_row_is_one_error_naming_the_file_and_the_key(tmp_path, text, named):
    path = tmp_path / "unlearn-expectations.toml"
    path.write_text(text)
    with pytest.raises(ExpectationsError) as err:
        load_expectations(None, tmp_path, METHODS)
    assert str(err.value).startswith(str(path)) and named in str(err.value), err.value


def test_a_table_that_is_not_one_is_refused():
    with pytest.raises(ExpectationsError, match="expected tables"):
        parse_rows({"tofu": 3}, "x.toml", METHODS)


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "unlearn.gate", "-p", "no:cacheprovider", *args],
                          cwd=folder, capture_output=True, text=True, timeout=300)


def test_the_plugin_collects_every_cell_of_the_named_methods_and_refuses_bad_rows(tmp_path):
    from unlearn.benchmarks import BENCHMARKS

    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-methods", "npo", "-m", "tofu or wmdp")
    assert res.returncode == 0, res.stdout + res.stderr
    ids = {line.split("::", 1)[1] for line in res.stdout.splitlines() if "::" in line}
    want = {f"test_row[{b}-{s}-npo-{row}]" for b in ("tofu", "wmdp") for s in BENCHMARKS.get(b).splits
            for row in ("forget_efficacy", "retain_performance", "mia_gap")}
    want |= {f"test_snapshot[{b}-{s}-npo]" for b in ("tofu", "wmdp") for s in BENCHMARKS.get(b).splits}
    assert ids == want, sorted(ids ^ want)

    (tmp_path / "unlearn-expectations.toml").write_text('[tofu.npo]\nforget_efficacy = "at least 0.5"\n')
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-methods", "npo,nope")
    assert res.returncode == 4 and "--unlearn-methods: nope is not a registered method" in res.stderr, res.stderr
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-methods", "npo")
    assert res.returncode == 4, res.stdout + res.stderr
    assert f"{tmp_path / 'unlearn-expectations.toml'}: tofu.npo.forget_efficacy = 'at least 0.5'" in res.stderr, res.stderr


def test_a_checkpoint_needs_bars_of_its_own_and_gets_a_test_per_row(tmp_path):
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-checkpoint", "smollm2-135m")
    assert res.returncode == 4 and "has no [BENCHMARK.checkpoint] table" in res.stderr, res.stdout + res.stderr
    (tmp_path / "unlearn-expectations.toml").write_text('[wmdp.checkpoint]\nwmdp_bio_acc = "<= 0.3"\nmmlu_acc = ">= 0.5"\n'
                                                         '[tofu.checkpoint]\nforget_rouge = "<= 0.4"\n')
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-checkpoint", "smollm2-135m")
    ids = {line.split("::", 1)[1] for line in res.stdout.splitlines() if "::test_checkpoint[" in line}
    assert ids == {"test_checkpoint[wmdp-all-checkpoint-wmdp_bio_acc]", "test_checkpoint[wmdp-all-checkpoint-mmlu_acc]"} | \
        {f"test_checkpoint[tofu-{s}-checkpoint-forget_rouge]" for s in ("forget01", "forget05", "forget10")}, res.stdout


def test_a_target_and_a_gold_come_together_and_only_for_a_checkpoint(tmp_path):
    (tmp_path / "unlearn-expectations.toml").write_text('[tofu.checkpoint]\nforget_efficacy = ">= 0.5"\n')
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-checkpoint", "ckpt", "--unlearn-target", "t")
    assert res.returncode == 4 and "--unlearn-target: --unlearn-target and --unlearn-gold go together" in res.stderr, \
        res.stdout + res.stderr
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-methods", "npo", "--unlearn-target", "t",
                  "--unlearn-gold", "g")
    assert res.returncode == 4 and "they are the references of --unlearn-checkpoint" in res.stderr, res.stdout + res.stderr
    res = _pytest(tmp_path, "--collect-only", "-q", "--unlearn-checkpoint", "ckpt", "--unlearn-target", "t",
                  "--unlearn-gold", "g")
    assert res.returncode == 0 and "test_checkpoint[tofu-forget01-checkpoint-forget_efficacy]" in res.stdout, \
        res.stdout + res.stderr


def test_an_accuracy_row_is_decided_from_its_interval_over_questions():
    from unlearn.gate.test_gate import checkpoint_interval

    result = {"per_question": {"wmdp_bio": {"pred": [0, 1, 2, 3] * 5, "answer": [0] * 20}}}
    lo, hi = checkpoint_interval(result, "wmdp_bio_acc")
    assert 0.05 <= lo < 0.25 < hi <= 0.5  # 5 of 20 right
    assert checkpoint_interval(result, "wmdp_bio_acc_norm") is None and checkpoint_interval(result, "mmlu_acc") is None
