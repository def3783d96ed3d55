"""The main job's pure parts: LaTeX escaping, tables, which benchmarks a run covers (the runs themselves: evals/test_main_job.py)."""

import pytest

from unlearn.report import latex_escape, to_latex, to_markdown


def test_latex_escapes_special_characters():
    assert latex_escape("a_b&c%d$#{}~^\\") == r"a\_b\&c\%d\$\#\{\}\textasciitilde{}\textasciicircum{}\textbackslash{}"
    cell = {"benchmark": "tofu", "split": "forget01", "method": "my_method%", "summary":
            {"forget_efficacy": 0.5, "retain_performance": float("nan"), "mia_auc": 0.5}, "metrics": {}}
    tex = to_latex([cell])
    assert r"my\_method\%" in tex and " -- " in tex


def test_default_benchmarks_follow_the_named_splits():
    """The dry run covers TOFU; MUSE's slice is asked for by name or by one of its splits; ``--splits`` picks the
    benchmarks that have a named split; a split of no benchmark is still an error naming the valid ones."""
    from unlearn.bench import BenchArgs, resolve

    assert resolve(BenchArgs(dry_run=True)).benchmarks == ["tofu"]
    assert resolve(BenchArgs(dry_run=True, benchmarks=["tofu", "muse"])).benchmarks == ["tofu", "muse"]
    assert resolve(BenchArgs(dry_run=True, splits=["forget10"])).benchmarks == ["tofu"]
    assert resolve(BenchArgs(dry_run=True, splits=["news"])).benchmarks == ["muse"]
    assert resolve(BenchArgs(splits=["news", "forget01"])).benchmarks == ["tofu", "muse"]
    with pytest.raises(ValueError, match="valid"):
        resolve(BenchArgs(dry_run=True, splits=["forget02"]))
    with pytest.raises(ValueError, match="names no split of muse"):  # asked for explicitly: each needs a split
        resolve(BenchArgs(benchmarks=["tofu", "muse"], splits=["forget01"]))


def test_tables_show_robustness_columns_when_cells_have_them():
    def cell(method, rec):
        summary = {"forget_efficacy": 0.9, "retain_performance": 0.95, "mia_auc": 0.6}
        if rec is not False:
            summary.update({"relearn_recovery": rec, "relearn_control": 0.4, "regen_leak": 0.7})
        return {"benchmark": "tofu", "split": "forget01", "method": method, "summary": summary, "metrics": {}}

    plain = [cell("npo", False), cell("retrain", False)]
    assert "Relearn recovery" not in to_markdown(plain) and "Relearn recovery" not in to_latex(plain)
    robust = [cell("npo", 0.25), cell("grad_ascent", None), cell("retrain", 0.4)]
    md, tex = to_markdown(robust), to_latex(robust)
    assert "| Relearn recovery | Gold control | Regen. leak |" in md.replace("Forget efficacy | Retain perf. | MIA AUC ", "")
    assert "| npo | 0.900 | 0.950 | 0.600 | 0.250 | 0.400 | 0.700 |" in md
    assert "| grad_ascent | 0.900 | 0.950 | 0.600 | -- | 0.400 | 0.700 |" in md  # undefined recovery: nothing removed
    assert r"\begin{tabular}{lrrrrrr}" in tex and "npo & 0.900 & 0.950 & 0.600 & 0.250 & 0.400 & 0.700" in tex


def test_run_info_names_the_installed_distribution():
    """Results record this project's version under the name pip installed it as (pyproject's name)."""
    import tomllib
    from importlib import metadata
    from pathlib import Path

    from unlearn.bench import DISTRIBUTION

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    assert DISTRIBUTION == project["name"] != "unlearn"
    assert metadata.version(DISTRIBUTION) == project["version"]


def test_the_dry_runs_separation_line_says_which_rule_holds_and_why():
    from unlearn.bench import separation_lines

    def cell(method, efficacy, retain, mia):
        return {"benchmark": "tofu", "split": "forget01", "method": method,
                "summary": {"forget_efficacy": efficacy, "retain_performance": retain, "mia_auc": mia}}

    methods = [cell("finetune", 0.26, 0.95, 1.0), cell("trou", 0.729, 0.817, 0.85), cell("grad_ascent", 0.73, 0.77, 0.9)]
    (line,) = separation_lines(methods + [cell("retrain", 1.0, 0.85, 0.479)])
    assert "the table separates methods" in line and "trou 0.729 at 0.817" in line and "grad_ascent" not in line
    (line,) = separation_lines(methods + [cell("retrain", 1.0, 0.85, 0.62)])  # the gold's MIA is off by 0.12
    assert "does not separate" in line and "gold MIA AUC 0.620" in line
    (line,) = separation_lines(methods[:1] + [cell("retrain", 1.0, 0.85, 0.5)])  # nothing forgets
    assert "does not separate" in line and "no method meets both bars" in line
    assert separation_lines(methods) == []  # no gold row: nothing to say
