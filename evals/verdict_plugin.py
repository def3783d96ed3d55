"""pytest plugin: the expectation rows' verdicts (unlearn/gate/verdicts.py) in the session's report.

Every expectation row's test carries its verdict in the report's user properties (``evals.cells.record_verdict``).
An inconclusive row is skipped with that verdict; here it is reported as its own outcome ("I", "N inconclusive" in
the closing line), listed with its interval, and counted; ``UNLEARN_VERDICTS=FILE`` writes every row as JSON.
On GitHub Actions (evals/github.py): with ``GITHUB_STEP_SUMMARY`` set the rows' table is appended to the job
summary, and with ``GITHUB_ACTIONS=true`` each failing row is annotated on the line of evals/expectations.py that
declares its bar. The root conftest.py loads it; ``-p evals.verdict_plugin`` loads it elsewhere."""

from __future__ import annotations

import os

_VERDICTS: list[dict] = []


def _verdict_of(report) -> dict | None:
    return next((v for k, v in getattr(report, "user_properties", ()) if k == "verdict"), None)


def pytest_report_teststatus(report, config):
    row = _verdict_of(report)
    if row and row["outcome"] == "inconclusive" and report.skipped:
        return "inconclusive", "I", ("INCONCLUSIVE", {"yellow": True})
    return None


def pytest_runtest_logreport(report):
    row = _verdict_of(report)
    if row is None or (report.when != "call" and not report.skipped):
        return
    if report.skipped and row["outcome"] == "inconclusive":
        reported = "inconclusive"
    elif hasattr(report, "wasxfail"):
        reported = "known failure" if report.skipped else "unexpected pass"
    else:
        reported = report.outcome  # passed / failed
    _VERDICTS.append({**row, "test": report.nodeid, "reported": reported})


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    rows = [r for r in _VERDICTS if r["reported"] == "inconclusive"]
    if rows:
        terminalreporter.section(f"inconclusive rows ({len(rows)}): the tier cannot decide them")
        for r in rows:
            terminalreporter.line(f"{r['test']}: {r['why']}")
    if _VERDICTS:
        counts = _counts()
        terminalreporter.line("expectation rows: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        if os.environ.get("GITHUB_ACTIONS") == "true":  # workflow commands: GitHub reads them from the job's output
            from evals.github import annotations

            for line in annotations(_VERDICTS, root=config.rootpath):
                terminalreporter.write_line(line)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            from evals.github import summary_markdown

            with open(summary, "a", encoding="utf-8") as f:
                f.write(summary_markdown(_VERDICTS, counts))


def _counts() -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in _VERDICTS:
        counts[r["reported"]] = counts.get(r["reported"], 0) + 1
    return counts


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("UNLEARN_VERDICTS")
    if not path or os.environ.get("PYTEST_XDIST_WORKER"):  # the controller (or a single process) has every report
        return
    import json

    with open(path, "w", encoding="utf-8") as f:
        json.dump({"counts": _counts(), "rows": _VERDICTS}, f, indent=1, default=str)
