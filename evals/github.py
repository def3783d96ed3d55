"""The expectation rows on GitHub Actions: a Markdown table for the job summary (``$GITHUB_STEP_SUMMARY``) and a
workflow command per failing row that annotates the line of ``evals/expectations.py`` declaring its bar. Pure
functions of the rows evals/verdict_plugin.py collects; the plugin calls them when GitHub's variables are set."""

from __future__ import annotations

import re
from pathlib import Path

EXPECTATIONS = Path(__file__).resolve().parent / "expectations.py"
# the bars every benchmark shares (the default bar, the membership rows) are declared in the installed package
SHARED = Path(__file__).resolve().parent.parent / "unlearn" / "gate" / "expectations.py"
# the table of each benchmark's bars (a benchmark without one: TOFU's default rows)
TABLES = {"tofu": "TOFU_EXPECTATIONS", "muse": "MUSE_EXPECTATIONS", "wmdp": "WMDP_EXPECTATIONS",
          "unsafe": "UNSAFE_EXPECTATIONS"}
FAILED = ("failed", "unexpected pass")
ORDER = {"failed": 0, "unexpected pass": 1, "inconclusive": 2, "known failure": 3, "passed": 4}


def _block(lines: list[str], name: str) -> tuple[int, int]:
    """The 0-based [start, end) lines of the top-level assignment ``name = ...`` (end: the next top-level line)."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"{name}\b.*=", line)), None)
    if start is None:
        return 0, 0
    end = next((i for i in range(start + 1, len(lines)) if lines[i] and not lines[i][0].isspace()
                and not lines[i].startswith(("}", "]", ")", "#"))), len(lines))
    return start, end


def bar_line(text: str, benchmark: str, method: str, row: str) -> int | None:
    """The 1-based line of ``text`` (evals/expectations.py, or unlearn/gate/expectations.py for the bars every
    benchmark shares) that declares ``row``'s bar for ``method`` on ``benchmark``: the method's entry in the
    benchmark's table, else the shared rows (membership, robustness, the default bar of a method without an
    entry); None when nothing in ``text`` matches."""
    lines = text.splitlines()
    if row in ("mia_gap", "mia_offset", "relearn_excess"):
        places = [({"mia_gap": "MIA_ROWS", "mia_offset": "GOLD_MIA_ROWS"}.get(row, "ROBUSTNESS_EXPECTATIONS"), None)]
    else:
        table = TABLES.get(benchmark, "TOFU_EXPECTATIONS")
        start, end = _block(lines, table)
        places = [(table, f'"{method}":')]
        if "TOFU_EXPECTATIONS.items()" in "\n".join(lines[start:end]):  # a table that takes TOFU's rows
            places.append(("TOFU_EXPECTATIONS", f'"{method}":'))
        places.append(("UNSAFE_DEFAULT" if benchmark == "unsafe" else "DEFAULT_EXPECTATIONS", None))
    for name, key in places:
        start, end = _block(lines, name)
        hit = next((i for i in range(start, end) if key is None or key in lines[i]), None)
        if hit is not None:
            return hit + 1
    return None


def _escape(text: str) -> str:
    """A workflow command's message: GitHub's escapes for %, CR and LF."""
    return str(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def annotations(rows: list[dict], path: Path = EXPECTATIONS, root: Path | None = None,
                shared: Path = SHARED) -> list[str]:
    """``::error`` workflow commands, one per failing row (a failed bar, or a known failure that passed: its
    entry must go), on the line of ``path`` that declares the bar, or of ``shared`` for the bars every benchmark
    shares (relative to ``root``, the checkout)."""
    files = [(p, p.read_text(encoding="utf-8")) for p in (path, shared) if p.is_file()]

    def shown(p: Path) -> Path:
        try:
            return p.relative_to(root or path.parent.parent)
        except ValueError:  # the checkout is not the session's root: the absolute path
            return p

    out = []
    for r in rows:
        if r["reported"] not in FAILED:
            continue
        where, line = next(((p, n) for p, text in files
                            if (n := bar_line(text, r.get("benchmark") or "tofu", r["method"], r["row"])) is not None),
                           (path, 1))
        title = f"{r.get('benchmark')} {r['method']} {r['split']} {r['row']} {r['reported']}"
        out.append(f"::error file={shown(where)},line={line},title={_escape(title)}::{_escape(r['why'])}")
    return out


def _cell(value) -> str:
    return "" if value is None else (f"{value:.3g}" if isinstance(value, float) else str(value))


def summary_markdown(rows: list[dict], counts: dict[str, int]) -> str:
    """The job summary: the counts, then every row (failures first) with its value, interval and bar."""
    lines = ["## Expectation rows", "", ", ".join(f"**{n}** {k}" for k, n in sorted(counts.items())), "",
             "| outcome | benchmark | split | method | row | value | 95% interval | bar |",
             "|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (ORDER.get(r["reported"], 9), r.get("benchmark") or "", r["split"],
                                         r["method"], r["row"])):
        interval = r.get("interval")
        iv = f"[{_cell(interval[0])}, {_cell(interval[1])}]" if interval else ""
        lines.append(f"| {r['reported']} | {r.get('benchmark')} | {r['split']} | {r['method']} | {r['row']} | "
                     f"{_cell(r.get('value'))} | {iv} | {r['bar']} |")
    return "\n".join(lines) + "\n"
