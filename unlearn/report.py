"""Outputs of the main job: versioned JSON, booktabs LaTeX, Markdown, plots and the HTML report
(``unlearn.html_report``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from unlearn.cache import atomic_write

# 2: run.precision, run.numerics, run.data; cells carry precision, device, numerics, data.kind
# 3: every cell carries schema_version (a cell file of another version is recomputed, not reused); run.failed lists
#    the cells that stopped on a non-finite loss
# 4: cells carry "intervals" (bootstrap 95% intervals of the summary columns; None where a benchmark has none)
SCHEMA_VERSION = 4
SUMMARY = [("forget_efficacy", "Forget efficacy"), ("retain_performance", "Retain perf."), ("mia_auc", "MIA AUC")]
# robustness columns, shown when a group's cells have them: recovery after a relearning attack
# (clipped to [0, 1]), the same attack on the gold model, worst-case regeneration leakage
ROBUST = [("relearn_recovery", "Relearn recovery"), ("relearn_control", "Gold control"), ("regen_leak", "Regen. leak")]


def summary_columns(rows: list[dict]) -> list[tuple[str, str]]:
    return SUMMARY + (ROBUST if any("relearn_recovery" in c["summary"] for c in rows) else [])
def native_metrics(benchmark: str) -> list[str]:
    """The benchmark's own measures shown beside the summary columns: its class's ``native_metrics`` (none for a
    name the registry does not hold, e.g. a results file of a benchmark not installed here)."""
    from unlearn.benchmarks import BENCHMARKS

    return list(getattr(BENCHMARKS.get(benchmark), "native_metrics", ())) if benchmark in BENCHMARKS else []


def best_and_ties(rows: list[dict], key: str) -> dict[str, str]:
    """Marks of one summary column among the non-gold rows: ``*`` on the best value (forget efficacy and retain
    performance: the highest; MIA AUC: the closest to the gold row's), ``~`` on each value whose 95% interval
    overlaps the best one's (their difference is not significant; overlapping intervals are a conservative
    test). Empty where the rows carry no intervals for ``key``."""
    from unlearn.intervals import overlaps

    gold = next((c for c in rows if c["method"] == "retrain"), None)
    cand = [c for c in rows if c["method"] != "retrain" and isinstance(c["summary"].get(key), (int, float))
            and not math.isnan(c["summary"][key]) and ((c.get("intervals") or {}).get("ci") or {}).get(key)]
    if len(cand) < 2:
        return {}
    if key == "mia_auc":
        if gold is None or not isinstance(gold["summary"].get(key), (int, float)):
            return {}
        best = min(cand, key=lambda c: abs(c["summary"][key] - gold["summary"][key]))
    else:
        best = max(cand, key=lambda c: c["summary"][key])
    ci = lambda c: c["intervals"]["ci"][key]  # noqa: E731
    marks = {best["method"]: "*"}
    marks.update({c["method"]: "~" for c in cand if c is not best and overlaps(ci(c), ci(best))})
    return marks


def _mean_sd(values: list) -> tuple[float | None, float | None]:
    if not values or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return None, None
    arr = np.asarray(values, float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def merge_seeds(rows: list[dict]) -> list[dict]:
    """One row per method: a method run with several seeds becomes the mean of its cells' numbers, with
    ``seed_sd`` (sample standard deviation over seeds), ``seeds``, and as each column's interval the union of
    its seeds' bootstrap intervals (the widest range any seed's questions allow: a conservative comparison).
    Rows of single-seed methods are returned as they are."""
    by: dict[str, list[dict]] = {}
    for c in rows:
        by.setdefault(c["method"], []).append(c)
    out = []
    for cs in by.values():
        if len(cs) == 1:
            out.append(cs[0])
            continue
        summary, sd, metrics = {}, {}, {}
        for k in cs[0]["summary"]:
            summary[k], sd[k] = _mean_sd([c["summary"].get(k) for c in cs])
        for k in cs[0].get("metrics", {}):
            metrics[k] = _mean_sd([c["metrics"].get(k) for c in cs])[0]
        cis = [((c.get("intervals") or {}).get("ci") or {}) for c in cs]
        union = {}
        for k in summary:
            each = [ci.get(k) for ci in cis]
            if each and all(b and None not in b for b in each):
                union[k] = [min(b[0] for b in each), max(b[1] for b in each)]
        out.append({**cs[0], "summary": summary, "metrics": metrics, "seed_sd": sd, "seeds": [c.get("seed") for c in cs],
                    "intervals": {"ci": union} if union else None})
    return out


def cell_value(c: dict, key: str, marks: dict[str, str], latex: bool = False) -> str:
    """A summary value (with several seeds: mean +- sd) with its 95% interval and its mark, as the tables print it."""
    text = fmt(c["summary"].get(key))
    sd = (c.get("seed_sd") or {}).get(key)
    if sd is not None:
        text += (r" $\pm$ " if latex else " ± ") + f"{sd:.3f}"
    ci = ((c.get("intervals") or {}).get("ci") or {}).get(key)
    if ci and None not in ci:
        text += f" [{ci[0]:.2f}, {ci[1]:.2f}]"
    mark = marks.get(c["method"], "")
    if mark:
        text += (r"$^{*}$" if mark == "*" else r"$^{\sim}$") if latex else mark
    return text


MARKS_NOTE = ("[lo, hi]: bootstrap 95% interval over questions (several seeds: mean ± sd over seeds and the union "
              "of the seeds' intervals); * best non-gold value of the column (MIA AUC: closest to the gold's); ~ interval "
              "overlaps the best one's (difference not significant)")

MARKS_NOTE_LATEX = (r"[lo, hi]: bootstrap 95\% interval over questions (several seeds: mean $\pm$ sd over seeds and "
                    r"the union of the seeds' intervals); $^{*}$ best non-gold value of the column (MIA "
                    r"AUC: closest to the gold's); $^{\sim}$ interval overlaps the best one's (difference not significant)")


def fmt(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "--"
    if isinstance(x, float) and x != 0 and abs(x) < 1e-3:
        return f"{x:.2e}"
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def latex_escape(text: str) -> str:
    out = str(text)
    for a, b in [("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("$", r"\$"), ("#", r"\#"),
                 ("_", r"\_"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\textasciicircum{}")]:
        out = out.replace(a, b) if a != "\\" else out.replace(a, "\x00")
    return out.replace("\x00", r"\textbackslash{}")


def by_benchmark_split(cells: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        groups.setdefault((c["benchmark"], c["split"]), []).append(c)
    for rows in groups.values():  # the gold row last, as in the papers' tables
        rows.sort(key=lambda c: (c["method"] == "retrain", c["method"]))
    return groups


def label(method: str) -> str:
    return "retrain (gold)" if method == "retrain" else method


def to_latex(cells: list[dict]) -> str:
    parts = ["% generated by unlearn bench; needs \\usepackage{booktabs}"]
    for (bench, split), rows in by_benchmark_split(cells).items():
        rows, cols = merge_seeds(rows), summary_columns(rows)
        parts += [r"\begin{table}[t]", r"\centering",
                  rf"\caption{{{latex_escape(bench.upper())} {latex_escape(split)}: forget efficacy, retain performance and MIA AUC"
                  + (", relearning recovery (gold control) and worst-case regeneration leakage" if len(cols) > len(SUMMARY) else "")
                  + "}",
                  r"\begin{tabular}{l" + "r" * len(cols) + "}", r"\toprule", "Method & " + " & ".join(h for _, h in cols) + r" \\",
                  r"\midrule"]
        marks = {k: best_and_ties(rows, k) for k, _ in SUMMARY}
        for c in rows:
            if c["method"] == "retrain":
                parts.append(r"\midrule")
            parts.append(latex_escape(label(c["method"])) + " & "
                         + " & ".join(cell_value(c, k, marks.get(k, {}), latex=True) if k in marks else fmt(c["summary"].get(k))
                                      for k, _ in cols) + r" \\")
        parts += [r"\bottomrule", r"\end{tabular}"]
        if any(c.get("intervals") for c in rows):
            parts.append(r"\par\footnotesize " + MARKS_NOTE_LATEX)
        parts += [r"\end{table}", ""]
    return "\n".join(parts)


def to_markdown(cells: list[dict], header: dict | None = None, failed: list[dict] | None = None) -> str:
    lines = ["# unlearn benchmark results", ""]
    if header:
        lines += [f"- {k}: {v}" for k, v in header.items()] + [""]
    if failed:
        lines += ["## Cells that stopped (not in the tables; a rerun tries them again)", ""]
        lines += [f"- {f['benchmark']}/{f['split']}/{f['method']}: {f['error']}" for f in failed] + [""]
    for (bench, split), rows in by_benchmark_split(cells).items():
        rows, native, cols = merge_seeds(rows), native_metrics(bench), summary_columns(rows)
        lines += [f"## {bench} {split}", "", "| method | " + " | ".join(h for _, h in cols) + " | " + " | ".join(native) + " |",
                  "|---|" + "---:|" * (len(cols) + len(native))]
        marks = {k: best_and_ties(rows, k) for k, _ in SUMMARY}
        for c in rows:
            lines.append(f"| {label(c['method'])} | "
                         + " | ".join(cell_value(c, k, marks[k]) if k in marks else fmt(c["summary"].get(k)) for k, _ in cols)
                         + " | " + " | ".join(fmt(c["metrics"].get(k)) for k in native) + " |")
        lines.append("")
        if any(c.get("intervals") for c in rows):
            lines += [MARKS_NOTE, ""]
    return "\n".join(lines)


def _subplots(nrows: int, ncols: int, figsize):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)


def _save(fig, path: Path, dpi: int) -> None:
    """Write the figure atomically (a temp file, then rename) and release it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=dpi)
    plt.close(fig)
    os.replace(tmp, path)


def _groups_having(cells: list[dict], key: str) -> dict[tuple[str, str], list[dict]]:
    """by_benchmark_split restricted to cells where ``key`` is set, empty groups dropped."""
    groups = {k: [c for c in rows if c.get(key)] for k, rows in by_benchmark_split(cells).items()}
    return {k: rows for k, rows in groups.items() if rows}


def plot(cells: list[dict], path: Path) -> None:
    groups = by_benchmark_split(cells)
    fig, axes = _subplots(1, len(groups), (5.5 * len(groups), 4.5))
    for ax, ((bench, split), rows) in zip(axes[0], groups.items()):
        for c in rows:
            x, y = c["summary"]["retain_performance"], c["summary"]["forget_efficacy"]
            gold = c["method"] == "retrain"
            ax.scatter([x], [y], marker="*" if gold else "o", s=180 if gold else 50, color="gold" if gold else None,
                       edgecolors="black", zorder=3)
            ax.annotate(label(c["method"]), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=9)
        ax.set_title(f"{bench.upper()} {split}")
        ax.set_xlabel("retain performance (utility / target utility)")
        ax.set_ylabel("forget efficacy (1 = like the gold model)")
        ax.set_ylim(-0.05, 1.1)
        ax.grid(alpha=0.3)
    _save(fig, path, dpi=120)


def plot_dynamics(cells: list[dict], path: Path) -> bool:
    """Forget and retain Prob along each run (cell["dynamics"]) against the fraction of the run done (steps
    differ between methods; IWAP's points are rounds, DSU's the repair phase after the negation). One
    column per benchmark split; False (nothing written) when no cell has dynamics."""
    groups = _groups_having(cells, "dynamics")
    if not groups:
        return False
    fig, axes = _subplots(2, len(groups), (5.5 * len(groups), 7))
    for col, ((bench, split), rows) in enumerate(groups.items()):
        for c in rows:
            pts = c["dynamics"]
            last = max(p["step"] for p in pts) or 1
            x = [p["step"] / last for p in pts]
            for row, key in enumerate(("forget_prob", "retain_prob")):
                axes[row][col].plot(x, [p[key] for p in pts], marker="o", ms=3, label=label(c["method"]))
        axes[0][col].set_title(f"{bench.upper()} {split}")
        axes[0][col].set_ylabel("forget Prob (lower = more forgotten)")
        axes[1][col].set_ylabel("retain Prob (utility proxy)")
        axes[1][col].set_xlabel("fraction of the unlearning run")
        for row in range(2):
            axes[row][col].grid(alpha=0.3)
        axes[0][col].legend(fontsize=8)
    _save(fig, path, dpi=110)
    return True


def plot_robustness(cells: list[dict], path: Path) -> bool:
    """Relearning recovery against forget efficacy per method, the gold control as a dashed line (one panel
    per benchmark split); False (nothing written) when no cell was attacked."""
    groups = _groups_having(cells, "robustness")
    if not groups:
        return False
    fig, axes = _subplots(1, len(groups), (5.5 * len(groups), 4.5))
    for ax, ((bench, split), rows) in zip(axes[0], groups.items()):
        for c in rows:
            rec = c["summary"].get("relearn_recovery")
            if c["method"] == "retrain" or rec is None:
                continue
            x = c["summary"]["forget_efficacy"]
            ax.scatter([x], [rec], s=50, edgecolors="black", zorder=3)
            ax.annotate(label(c["method"]), (x, rec), textcoords="offset points", xytext=(5, 4), fontsize=9)
        control = next((c["summary"].get("relearn_control") for c in rows if c["summary"].get("relearn_control") is not None), None)
        if control is not None:
            ax.axhline(control, ls="--", color="goldenrod", label="gold control")
            ax.legend(fontsize=8)
        ax.set_title(f"{bench.upper()} {split}")
        ax.set_xlabel("forget efficacy")
        ax.set_ylabel("recovery after the relearning attack (clipped)")
        ax.set_ylim(-0.05, 1.1)
        ax.grid(alpha=0.3)
    _save(fig, path, dpi=120)
    return True


class ResultsError(ValueError):
    """A results JSON that cannot be read as this version's; the message names the file."""


def read_results(path: Path) -> dict:
    """``benchmark_results.json`` (or the folder holding it) as written by this version of ``unlearn bench``."""
    path = Path(path)
    if path.is_dir():
        path = path / "benchmark_results.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResultsError(f"{path}: no such results file (a folder written by `unlearn bench` holds "
                           "benchmark_results.json)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ResultsError(f"{path}: cannot be read ({err})") from None
    except json.JSONDecodeError as err:
        raise ResultsError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}); the run may have been cut "
                           "short: rerun `unlearn bench` on the same folder to rewrite it") from None
    if not isinstance(doc, dict) or "schema_version" not in doc:
        raise ResultsError(f"{path}: not an `unlearn bench` results file (no schema_version)")
    if doc["schema_version"] != SCHEMA_VERSION:
        raise ResultsError(f"{path}: schema version {doc['schema_version']!r}, this version of unlearn reads "
                           f"{SCHEMA_VERSION}; rerun `unlearn bench` with this version on the same folder (finished "
                           "cells of the same version are reused)")
    if not isinstance(doc.get("cells"), list) or not isinstance(doc.get("run"), dict):
        raise ResultsError(f"{path}: 'cells' must be a list and 'run' an object")
    for i, c in enumerate(doc["cells"]):
        missing = [k for k in ("benchmark", "split", "method", "summary") if not isinstance(c, dict) or k not in c]
        if missing:
            raise ResultsError(f"{path}: cells[{i}] lacks {', '.join(missing)}")
    return doc


def results_doc(cells: list[dict], run_info: dict) -> dict:
    """The results document (``benchmark_results.json``): schema version, run information, cells."""
    return {"schema_version": SCHEMA_VERSION, "run": run_info, "cells": cells}


def write_outputs(cells: list[dict], out_dir: Path, run_info: dict) -> dict[str, Path]:
    """The results JSON, the LaTeX and Markdown tables and the plots (the HTML page is ``unlearn.html_report``)."""
    out_dir = Path(out_dir)
    doc = results_doc(cells, run_info)
    paths = {"json": out_dir / "benchmark_results.json", "tex": out_dir / "results_table.tex",
             "md": out_dir / "results.md", "png": out_dir / "forget_vs_retain.png"}
    atomic_write(paths["json"], json.dumps(doc, indent=1, allow_nan=True))
    atomic_write(paths["tex"], to_latex(cells))
    header = {k: run_info[k] for k in ("model", "protocol", "precision", "dry_run") if k in run_info}
    if "data" in run_info:
        header["data"] = "; ".join(s for v in run_info["data"].values() for s in v)
    atomic_write(paths["md"], to_markdown(cells, header, run_info.get("failed")))
    plot(cells, paths["png"])
    if plot_dynamics(cells, out_dir / "dynamics.png"):
        paths["dynamics"] = out_dir / "dynamics.png"
    if plot_robustness(cells, out_dir / "robustness.png"):
        paths["robustness"] = out_dir / "robustness.png"
    return paths
