"""The expectation rows' outcomes as a pytest session reports them (evals/verdict_plugin.py): an inconclusive row
is its own outcome in the closing line and in UNLEARN_VERDICTS, never a pass nor a known failure, and a missing
value fails even under a strict xfail."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # evals/ is a folder of the checkout, not of the package

pytest_plugins = ["pytester"]

ROWS = '''
import pytest
from evals.cells import check_expectation

def cell(efficacy, interval, retain=0.95):
    return {"benchmark": "toy", "method": "npo", "split": "forget01",
            "summary": {"forget_efficacy": efficacy, "retain_performance": retain},
            "metrics": {}, "intervals": {"ci": {"forget_efficacy": interval, "retain_performance": [0.9, 1.0]}}}

KNOWN = {("npo", "forget01", "forget_efficacy"): "measured 0.1: the toy method does not forget"}
ROW = ("forget_efficacy", ">=", 0.3)

def test_passes(request):
    check_expectation(cell(0.8, [0.6, 0.9]), ROW, {}, request)

def test_straddles(request):
    check_expectation(cell(0.35, [0.1, 0.6]), ROW, {}, request)

def test_known_failure(request):
    check_expectation(cell(0.1, [0.0, 0.2]), ROW, KNOWN, request)

def test_missing_value_under_a_known_failure(request):
    check_expectation(cell(float("nan"), [0.0, 0.2]), ROW, KNOWN, request)

def test_fails(request):
    check_expectation(cell(0.1, [0.0, 0.2]), ROW, {}, request)
'''


def _run(pytester, monkeypatch, *args):
    pytester.makepyfile(test_rows=ROWS)
    out = pytester.path / "verdicts.json"
    monkeypatch.setenv("UNLEARN_VERDICTS", str(out))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for var in ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID"):
        monkeypatch.delenv(var, raising=False)  # the inner session is its own controller, even under our xdist
    result = pytester.runpytest_subprocess("-p", "evals.verdict_plugin", "-p", "no:cacheprovider", "-rA", *args)
    return result, json.loads(out.read_text())


def test_inconclusive_is_its_own_outcome(pytester, monkeypatch):
    result, written = _run(pytester, monkeypatch)
    assert result.parseoutcomes() == {"passed": 1, "inconclusive": 1, "xfailed": 1, "failed": 2}
    result.stdout.fnmatch_lines(["*inconclusive rows (1)*"])
    assert "test_straddles: forget_efficacy=0.35 [0.1, 0.6] (want >= 0.3): the interval straddles the bar" in result.stdout.str()
    result.stdout.fnmatch_lines(["*MissingValue*forget_efficacy is nan*"])
    by_test = {r["test"].split("::")[-1]: r for r in written["rows"]}
    assert by_test["test_straddles"]["reported"] == "inconclusive" and by_test["test_straddles"]["interval"] == [0.1, 0.6]
    assert by_test["test_known_failure"]["reported"] == "known failure"
    assert by_test["test_passes"]["reported"] == "passed" and by_test["test_fails"]["reported"] == "failed"
    assert written["counts"] == {"passed": 1, "inconclusive": 1, "known failure": 1, "failed": 1}
    assert result.ret == 1


def test_inconclusive_rows_are_counted_under_xdist(pytester, monkeypatch):
    result, written = _run(pytester, monkeypatch, "-n", "2")
    assert result.parseoutcomes()["inconclusive"] == 1
    assert written["counts"]["inconclusive"] == 1


def test_on_github_the_rows_go_to_the_job_summary_and_failures_are_annotated_on_their_bar(pytester, monkeypatch):
    """GITHUB_STEP_SUMMARY gets the rows' table (failures first); with GITHUB_ACTIONS=true the failing row (and
    only it) is an ::error on the line of evals/expectations.py that declares npo's bar."""
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    result, _ = _run(pytester, monkeypatch)
    text = summary.read_text()
    table = [line for line in text.splitlines() if line.startswith("| ") and "outcome" not in line]
    assert table[0] == "| failed | toy | forget01 | npo | forget_efficacy | 0.1 | [0, 0.2] | >= 0.3 |", text
    assert {line.split(" | ")[0] for line in table} == {"| failed", "| inconclusive", "| known failure", "| passed"}
    lines = (ROOT / "evals" / "expectations.py").read_text().splitlines()
    npo = next(i + 1 for i, line in enumerate(lines) if line.startswith('    "npo": ['))
    errors = [line for line in result.stdout.lines if line.startswith("::error ")]
    assert len(errors) == 1, errors
    assert errors[0].startswith("::error file=") and f"evals/expectations.py,line={npo},title=toy npo forget01 " \
        "forget_efficacy failed::forget_efficacy=0.1" in errors[0], errors[0]


def test_a_shared_bar_is_annotated_where_the_package_declares_it():
    """The default bar and the membership rows live in unlearn/gate/expectations.py (the gate plugin holds methods
    of other repositories to them too): a failure of one is annotated there, a table row in evals/expectations.py."""
    from pathlib import Path

    from evals.github import annotations

    root = Path(__file__).resolve().parent.parent
    rows = [{"reported": "failed", "benchmark": b, "method": m, "split": "s", "row": r, "why": "w"}
            for b, m, r in (("tofu", "a_plugin", "forget_efficacy"), ("wmdp", "npo", "mia_gap"), ("tofu", "npo", "forget_efficacy"))]
    shared = (root / "unlearn" / "gate" / "expectations.py").read_text().splitlines()
    table = (root / "evals" / "expectations.py").read_text().splitlines()
    got = [(a.split("file=")[1].split(",")[0], int(a.split("line=")[1].split(",")[0])) for a in annotations(rows, root=root)]
    assert [f for f, _ in got] == ["unlearn/gate/expectations.py", "unlearn/gate/expectations.py", "evals/expectations.py"]
    assert shared[got[0][1] - 1].startswith("DEFAULT_EXPECTATIONS =") and shared[got[1][1] - 1].startswith("MIA_ROWS =")
    assert table[got[2][1] - 1].strip().startswith('"npo":')
