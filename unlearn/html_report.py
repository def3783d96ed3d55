"""``report.html``: one self-contained page per run (inline CSS, JS and SVG; nothing is fetched when it is
viewed), and the comparison of several runs cell by cell.

What it shows: the run's identity; per benchmark split a sortable summary table (gold row marked), the
forget-vs-retain scatter and the unlearning-dynamics curves as SVG; cells that stopped; and per cell a
drill-down of the per-question values, sorted by what still leaks. The drill-down data sit in a JSON block and
are rendered when a cell is opened, 200 rows at a time, so a full grid stays usable.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import numpy as np

from unlearn.cache import atomic_write
from unlearn.report import (MARKS_NOTE, ROBUST, SUMMARY, best_and_ties, by_benchmark_split, cell_value, fmt,
                            label, merge_seeds, read_results, native_metrics)

PAGE_ROWS = 200  # drill-down rows rendered per click
BOOTSTRAP = 1000  # resamples for the comparison's intervals
CSP = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
       "connect-src 'none'; form-action 'none'")


def esc(x) -> str:
    return html.escape(str(x), quote=True)


def _num(x):
    """JSON-safe number: NaN and inf become None (shown as --)."""
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x


# ---------------------------------------------------------------- per-question rows
def _by_index(d: dict | None) -> list:
    """TOFU logs store {"0": v, "1": v, ...}; back to a list in index order."""
    if not d:
        return []
    return [d[k] for k in sorted(d, key=int)]


def tofu_shared(cell: dict, gold: dict | None) -> list[list]:
    """What every method of one TOFU split shares, per forget question: question, reference, the target's answer,
    the gold model's answer, their ROUGE-L recall (stored once per split, not once per cell)."""
    logs = cell.get("per_question", {}).get("logs", {}).get("forget", {})
    texts = _by_index(logs.get("generated_text"))
    gold_logs = (gold or {}).get("per_question", {}).get("logs", {}).get("forget", {})
    gold_texts, gold_rouge = _by_index(gold_logs.get("generated_text")), _by_index(gold_logs.get("rougeL_recall"))
    target = cell.get("per_question", {}).get("target_forget") or {}
    target_texts, target_rouge = target.get("generated_text") or [], target.get("rougeL_recall") or []
    at = lambda xs, i: xs[i] if i < len(xs) else None  # noqa: E731
    return [[t[0].split("Question:", 1)[-1].rsplit("Answer:", 1)[0].strip() if t else "",
             t[2] if len(t) > 2 else "", at(target_texts, i), (at(gold_texts, i) or [None, None])[1],
             _num(at(target_rouge, i)), _num(at(gold_rouge, i))] for i, t in enumerate(texts)]


TOFU_COLUMNS = ["#", "question", "reference", "target's answer", "gold's answer", "this method's answer",
                "ROUGE-L recall", "target ROUGE", "gold ROUGE", "truth ratio"]
# where each displayed column comes from: ("r", k) the cell's own row, ("s", k) the split's shared row
TOFU_LAYOUT = [["r", 0], ["s", 0], ["s", 1], ["s", 2], ["s", 3], ["r", 1], ["r", 2], ["s", 4], ["s", 5], ["r", 3]]


def tofu_rows(cell: dict, shared: str) -> dict:
    """One TOFU cell's forget questions: [index, the method's answer, its ROUGE-L recall, truth ratio], sorted by
    the ROUGE (what still leaks) first; the rest of each displayed row comes from the split's shared rows."""
    logs = cell.get("per_question", {}).get("logs", {}).get("forget", {})
    texts = _by_index(logs.get("generated_text"))
    rouge, tr = _by_index(logs.get("rougeL_recall")), _by_index(logs.get("truth_ratio"))
    rows = [[i, t[1] if len(t) > 1 else "", _num(rouge[i]) if i < len(rouge) else None,
             _num(tr[i]) if i < len(tr) else None] for i, t in enumerate(texts)]
    rows.sort(key=lambda r: (-(r[2] if r[2] is not None else -1), r[0]))
    return {"columns": TOFU_COLUMNS, "layout": TOFU_LAYOUT, "shared": shared, "leak": "ROUGE-L recall", "rows": rows}


def generic_rows(cell: dict) -> dict:
    """Other benchmarks: every per-question group whose lists have one length, as columns (texts included);
    sorted by the first score column that marks leakage (a ROUGE, or a correct answer)."""
    cols: dict[str, list] = {}
    for group, values in (cell.get("per_question") or {}).items():
        if not isinstance(values, dict):
            continue
        for name, v in values.items():
            if isinstance(v, list) and v and not isinstance(v[0], (list, dict)):
                cols[f"{group}.{name}"] = v
    if not cols:
        return {"columns": [], "leak": None, "rows": []}
    n = max(len(v) for v in cols.values())
    cols = {k: v for k, v in cols.items() if len(v) == n}
    for group in {k.split(".")[0] for k in cols}:  # multiple choice: was the answer right (what still knows)
        if f"{group}.pred" in cols and f"{group}.answer" in cols:
            cols[f"{group}.correct"] = [int(p == a) for p, a in zip(cols[f"{group}.pred"], cols[f"{group}.answer"])]
    names = list(cols)
    leak = next((k for k in names if "rouge" in k.lower()), next((k for k in names if k.endswith(".correct")), None))
    rows = [[i] + [_num(cols[k][i]) for k in names] for i in range(n)]
    if leak:
        j = names.index(leak) + 1
        rows.sort(key=lambda r: (-(r[j] if isinstance(r[j], (int, float)) else -1), r[0]))
    return {"columns": ["#"] + names, "leak": leak, "rows": rows}


def drilldown(cells: list[dict]) -> dict:
    """{"shared": {split id: rows every method of the split shares}, "cells": [one entry per cell]}."""
    shared, out = {}, []
    for (bench, split), rows in by_benchmark_split(cells).items():
        gold = next((c for c in rows if c["method"] == "retrain"), None)
        gid = f"{bench}-{split}"
        if bench == "tofu":
            shared[gid] = tofu_shared(rows[0], gold)
        for c in rows:
            data = tofu_rows(c, gid) if bench == "tofu" else generic_rows(c)
            out.append({"id": f"{gid}-{c['method']}", "title": f"{bench.upper()} {split} / {label(c['method'])}", **data})
    return {"shared": shared, "cells": out}


# ---------------------------------------------------------------- SVG charts
def _scale(v, lo, hi, a, b):
    return a + (b - a) * ((v - lo) / (hi - lo) if hi > lo else 0.5)


# Label placement estimates a text's box from its length (11px sans-serif; DejaVu Sans, Chromium's default on
# Debian, advances about 0.62 em a character); tests/test_html_report.py measures the drawn boxes in Chromium.
CHAR_W, TEXT_H = 7.0, 13.0


def _nice_ticks(lo: float, hi: float, most: int = 6) -> list[float]:
    """Round ticks covering [lo, hi]: the smallest step of 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2 giving at most ``most``."""
    for step in (0.05, 0.1, 0.2, 0.25, 0.5, 1.0, 2.0, 5.0):
        a, b = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
        if b - a + 1 <= most:
            return [round(k * step, 10) for k in range(a, b + 1)]
    return [lo, hi]


def _box(x: float, y: float, text: str, anchor: str) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a text drawn at baseline (x, y) with this anchor (estimate: CHAR_W, TEXT_H)."""
    width = CHAR_W * len(text)
    x0 = x - (width if anchor == "end" else width / 2 if anchor == "middle" else 0)
    return x0, y - TEXT_H + 3, x0 + width, y + 3


def _overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _place_labels(points: list[tuple[float, float, str]], obstacles: list, bounds) -> list[tuple[float, float, str, bool]]:
    """A spot for each point's label: the nearest of rings of candidate positions around the point whose box stays
    inside ``bounds`` and clear of every placed label, every dot and ``obstacles``; (x, y, anchor, leader) where
    leader says the label sits away from its dot (a line joins them). Deterministic, in ``points`` order."""
    dots = [(x - 6, y - 6, x + 6, y + 6) for x, y, _ in points]
    placed: list = []
    out = []

    def candidates(px: float, py: float):  # nearest first: rings of 8 positions, 8 px further out each
        for ring in range(1, 7):
            d = 8.0 * ring
            for dx, dy, anchor in ((d, 4, "start"), (-d, 4, "end"), (0, -d, "middle"), (0, d + 9, "middle"),
                                   (d * 0.7, -d * 0.7, "start"), (-d * 0.7, -d * 0.7, "end"),
                                   (d * 0.7, d * 0.7 + 9, "start"), (-d * 0.7, d * 0.7 + 9, "end")):
                yield px + dx, py + dy, anchor, ring > 1

    for i, (px, py, text) in enumerate(points):
        blocked = placed + obstacles + dots[:i] + dots[i + 1:]
        best = None
        for lx, ly, anchor, leader in candidates(px, py):
            box = _box(lx, ly, text, anchor)
            inside = box[0] >= bounds[0] and box[1] >= bounds[1] and box[2] <= bounds[2] and box[3] <= bounds[3]
            if inside and not any(_overlap(box, o) for o in blocked):
                best = (lx, ly, anchor, leader, box)
                break
        if best is None:  # nowhere free: inside the bounds at least, beside the dot
            anchor = "end" if px > (bounds[0] + bounds[2]) / 2 else "start"
            lx = px + (-8 if anchor == "end" else 8)
            best = (lx, py + 4, anchor, False, _box(lx, py + 4, text, anchor))
        placed.append(best[4])
        out.append(best[:4])
    return out


def scatter_svg(rows: list[dict]) -> str:
    """Forget efficacy (y) against retain performance (x), one dot per method with its 95% intervals as error bars
    (where the cell has them), the gold model marked; labels placed clear of each other and inside the chart."""
    w, h, left, bottom, top, right = 460, 320, 48, 44, 14, 18
    pts = [(c, c["summary"].get("retain_performance"), c["summary"].get("forget_efficacy")) for c in rows]
    pts = [(c, x, y) for c, x, y in pts if _num(x) is not None and _num(y) is not None]

    def ci(c, key):
        iv = ((c.get("intervals") or {}).get("ci") or {}).get(key)
        return iv if iv and len(iv) == 2 and all(_num(v) is not None for v in iv) else None

    xs = [x for _, x, _ in pts] + [0.0, 1.0] + [v for c, _, _ in pts for v in (ci(c, "retain_performance") or [])]
    ticks = _nice_ticks(min(xs), max(xs))
    xlo, xhi = ticks[0], ticks[-1]
    X = lambda v: _scale(v, xlo, xhi, left + 8, w - right)  # noqa: E731
    Y = lambda v: _scale(min(max(v, 0), 1), 0, 1, h - bottom, top)  # noqa: E731
    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="forget efficacy against retain performance">',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - 4}" y2="{h - bottom}" stroke="#888"/>',
             f'<line x1="{left}" y1="{top - 4}" x2="{left}" y2="{h - bottom}" stroke="#888"/>',
             f'<text x="{(left + w) / 2}" y="{h - 8}" text-anchor="middle" class="axis">retain performance</text>',
             f'<text x="12" y="{(top + h - bottom) / 2}" transform="rotate(-90 12 {(top + h - bottom) / 2})" '
             'text-anchor="middle" class="axis">forget efficacy</text>']
    obstacles = [_box((left + w) / 2, h - 8, "retain performance", "middle")]
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{left - 6}" y="{Y(v) + 4:.1f}" text-anchor="end" class="tick">{v:g}</text>')
        obstacles.append(_box(left - 6, Y(v) + 4, f"{v:g}", "end"))
    for v in ticks:
        parts.append(f'<text x="{X(v):.1f}" y="{h - bottom + 16}" text-anchor="middle" class="tick">{v:g}</text>')
        obstacles.append(_box(X(v), h - bottom + 16, f"{v:g}", "middle"))
    if not pts:
        parts.append(f'<text x="{w / 2 + 20}" y="{h / 2}" text-anchor="middle" class="tick">no point: retain performance or'
                     f'</text><text x="{w / 2 + 20}" y="{h / 2 + 14}" text-anchor="middle" class="tick">efficacy undefined '
                     '(target utility 0, or no forget gap)</text>')
    for c, x, y in pts:  # error bars under the dots
        cx, cy = X(x), Y(y)
        for key, horizontal in (("retain_performance", True), ("forget_efficacy", False)):
            iv = ci(c, key)
            if iv is None:
                continue
            a, b = (X(iv[0]), X(iv[1])) if horizontal else (Y(iv[0]), Y(iv[1]))
            if horizontal:
                parts.append(f'<path class="err" d="M{a:.1f} {cy:.1f}H{b:.1f}M{a:.1f} {cy - 3:.1f}V{cy + 3:.1f}'
                             f'M{b:.1f} {cy - 3:.1f}V{cy + 3:.1f}"/>')
            else:
                parts.append(f'<path class="err" d="M{cx:.1f} {a:.1f}V{b:.1f}M{cx - 3:.1f} {a:.1f}H{cx + 3:.1f}'
                             f'M{cx - 3:.1f} {b:.1f}H{cx + 3:.1f}"/>')
    bounds = (left + 2, 2, w - 2, h - bottom - 2)  # the plot area: above the x ticks, right of the y axis
    spots = _place_labels([(X(x), Y(y), label(c["method"])) for c, x, y in pts], obstacles, bounds)
    for (c, x, y), (lx, ly, anchor, leader) in zip(pts, spots):
        cx, cy = X(x), Y(y)
        gold = c["method"] == "retrain"
        iv = [ci(c, k) for k in ("forget_efficacy", "retain_performance")]
        tip = f"{label(c['method'])}: efficacy {fmt(y)}" + (f" [{fmt(iv[0][0])}, {fmt(iv[0][1])}]" if iv[0] else "") \
            + f", retain {fmt(x)}" + (f" [{fmt(iv[1][0])}, {fmt(iv[1][1])}]" if iv[1] else "")
        if leader:
            parts.append(f'<line class="leader" x1="{cx:.1f}" y1="{cy:.1f}" x2="{lx:.1f}" y2="{ly - 4:.1f}"/>')
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" class="{"dot gold" if gold else "dot"}">'
                     f'<title>{esc(tip)}</title></circle>'
                     f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" class="lbl">{esc(label(c["method"]))}</text>')
    return "".join(parts) + "</svg>"


PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
           "#bcbd22", "#393b79", "#637939"]


def dynamics_svg(rows: list[dict]) -> str | None:
    """forget_prob (solid) and retain_prob (dashed) against the optimiser step, one colour per method."""
    series = [(c, c["dynamics"]) for c in rows if c.get("dynamics")]
    if not series:
        return None
    keys = [k for k in ("forget_prob", "retain_prob") if any(k in p for _, d in series for p in d)]
    steps = [p["step"] for _, d in series for p in d]
    vals = [p[k] for _, d in series for p in d for k in keys if _num(p.get(k)) is not None]
    if not vals:
        return None
    w, h, m = 420, 300, 44
    lo, hi, slo, shi = min(vals + [0.0]), max(vals + [1e-9]), min(steps), max(steps)
    parts = [f'<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="unlearning dynamics">',
             f'<line x1="{m}" y1="{h - m}" x2="{w - 10}" y2="{h - m}" stroke="#888"/>',
             f'<line x1="{m}" y1="10" x2="{m}" y2="{h - m}" stroke="#888"/>',
             f'<text x="{w / 2}" y="{h - 8}" text-anchor="middle">optimiser step</text>',
             f'<text x="12" y="{h / 2}" transform="rotate(-90 12 {h / 2})" text-anchor="middle">Prob (solid forget, dashed retain)</text>',
             f'<text x="{m - 6}" y="{h - m + 4}" text-anchor="end" class="tick">{lo:.2g}</text>',
             f'<text x="{m - 6}" y="18" text-anchor="end" class="tick">{hi:.2g}</text>',
             f'<text x="{m + 8}" y="{h - m + 16}" class="tick">{slo}</text>',
             f'<text x="{w - 24}" y="{h - m + 16}" text-anchor="end" class="tick">{shi}</text>']
    for n, (c, d) in enumerate(series):
        colour = PALETTE[n % len(PALETTE)]
        for k, dash in zip(keys, ("", ' stroke-dasharray="5 4"')):
            pts = [(p["step"], p[k]) for p in d if _num(p.get(k)) is not None]
            coords = " ".join(f"{_scale(s, slo, shi, m + 8, w - 24):.1f},{_scale(v, lo, hi, h - m, 14):.1f}" for s, v in pts)
            parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{coords}"{dash}>'
                         f'<title>{esc(label(c["method"]))} {k}</title></polyline>')
        parts.append(f'<text x="{w - 12}" y="{24 + 14 * n}" text-anchor="end" fill="{colour}" class="lbl">'
                     f'{esc(label(c["method"]))}</text>')
    return "".join(parts) + "</svg>"


# ---------------------------------------------------------------- tables
def _value_td(v, text: str | None = None) -> str:
    """A table cell showing ``text`` (default ``v`` formatted) and sorting by ``v`` (undefined: blank, sorted last)."""
    n = _num(v)
    return f'<td data-v="{"" if n is None else n}">{esc(fmt(v) if text is None else text)}</td>'


def summary_table(bench: str, split: str, rows: list[dict]) -> str:
    """One row per method (several seeds: their mean ± sd), each summary value with its bootstrap 95% interval and
    the Markdown table's marks (* best, ~ not significantly different from it), sorting by the value."""
    rows = merge_seeds(rows)
    cols = SUMMARY + [c for c in ROBUST if any(c[0] in r["summary"] for r in rows)]
    native = [k for k in native_metrics(bench) if any(k in r.get("metrics", {}) for r in rows)]
    marks = {k: best_and_ties(rows, k) for k, _ in SUMMARY}
    head = "".join(f'<th data-sort="num">{esc(h)}</th>' for _, h in cols) + "".join(
        f'<th data-sort="num">{esc(k)}</th>' for k in native)
    body = []
    for c in rows:
        gold = c["method"] == "retrain"
        cells = "".join(_value_td(c["summary"].get(k), cell_value(c, k, marks[k]) if k in marks else None)
                        for k, _ in cols)
        cells += "".join(_value_td(c["metrics"].get(k)) for k in native)
        badge = ' <span class="badge">gold</span>' if gold else ""
        body.append(f'<tr class="{"gold" if gold else ""}" data-method="{esc(c["method"])}">'
                    f'<td data-v="{esc(c["method"])}">{esc(c["method"])}{badge}</td>{cells}</tr>')
    note = f'<p class="note">{esc(MARKS_NOTE)}</p>' if any(c.get("intervals") for c in rows) else ""
    return (f'<table class="summary sortable" data-group="{esc(bench)}-{esc(split)}"><thead><tr><th data-sort="text">method</th>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{note}')


def identity_table(run: dict) -> str:
    numerics = run.get("numerics") or {}
    data = "; ".join(s for v in (run.get("data") or {}).values() for s in v)
    items = [("model", run.get("model")), ("quantisation", run.get("quant") or "none"), ("data", data),
             ("protocol", run.get("protocol")), ("precision", run.get("precision")), ("device", run.get("device")),
             ("CPU / kernels", numerics.get("tag") or numerics.get("cpu")), ("commit", run.get("git_commit")),
             ("wall time", f'{run.get("wall_s")} s' if run.get("wall_s") is not None else None),
             ("dry run", run.get("dry_run")), ("seed", run.get("seed")),
             ("packages", ", ".join(f"{k} {v}" for k, v in (run.get("packages") or {}).items() if v))]
    return ('<table class="identity">' + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in items
                                                  if v is not None) + "</table>")


# ---------------------------------------------------------------- comparison of runs
def comparable(a: dict, b: dict, la: str, lb: str) -> None:
    """Refuse runs that measured different things: another protocol, model or data."""
    for key, what in (("protocol", "protocol"), ("model", "model")):
        if a["run"].get(key) != b["run"].get(key):
            raise ValueError(f"{la} and {lb} differ in {what} ({a['run'].get(key)!r} vs {b['run'].get(key)!r}); "
                             "compare runs of one protocol and model")
    da, db = a["run"].get("data"), b["run"].get("data")
    shared = set(da or {}) & set(db or {})
    diff = [k for k in shared if da[k] != db[k]]
    if diff:
        raise ValueError(f"{la} and {lb} read different data for {', '.join(diff)} ({da[diff[0]]} vs {db[diff[0]]})")
    for ca in a["cells"]:
        for cb in b["cells"]:
            same = all(ca[k] == cb[k] for k in ("benchmark", "split", "method"))
            if same and ca.get("data") and cb.get("data") and ca["data"].get("hash") != cb["data"].get("hash"):
                raise ValueError(f"{la} and {lb}: {ca['benchmark']}/{ca['split']} read different data "
                                 f"(hash {ca['data'].get('hash')} vs {cb['data'].get('hash')})")


def per_question_forget(cell: dict) -> list[float] | None:
    """The per-question values behind the forget measure, where the cell has them (TOFU's ROUGE-L recall on the
    forget set, MUSE's VerbMem ROUGE-L F1)."""
    pq = cell.get("per_question") or {}
    if cell["benchmark"] == "tofu":
        vals = _by_index(pq.get("logs", {}).get("forget", {}).get("rougeL_recall"))
    else:
        vals = (pq.get("verbmem") or {}).get("rougeL_f1")
    return [float(v) for v in vals] if vals else None


def bootstrap_diff(a: list[float], b: list[float], seed: int = 0) -> tuple[float, float, float]:
    """Mean of b minus mean of a with a 95% percentile interval; paired (same questions, resampled together)
    when the lists have one length, else each resampled on its own."""
    rng = np.random.default_rng(seed)
    x, y = np.asarray(a, float), np.asarray(b, float)
    if len(x) == len(y):
        idx = rng.integers(0, len(x), (BOOTSTRAP, len(x)))
        d = y[idx].mean(1) - x[idx].mean(1)
    else:
        d = y[rng.integers(0, len(y), (BOOTSTRAP, len(y)))].mean(1) - x[rng.integers(0, len(x), (BOOTSTRAP, len(x)))].mean(1)
    lo, hi = np.percentile(d, [2.5, 97.5])
    return float(y.mean() - x.mean()), float(lo), float(hi)


def comparison_table(docs: list[tuple[str, dict]]) -> str:
    (la, a), others = docs[0], docs[1:]
    parts = []
    for lb, b in others:
        comparable(a, b, la, lb)
        index = {(c["benchmark"], c["split"], c["method"]): c for c in b["cells"]}
        rows = []
        for ca in a["cells"]:
            cb = index.get((ca["benchmark"], ca["split"], ca["method"]))
            if cb is None:
                continue
            cells = ""
            for k, _ in SUMMARY:
                va, vb = _num(ca["summary"].get(k)), _num(cb["summary"].get(k))
                delta = None if va is None or vb is None else vb - va
                cells += f"<td>{fmt(va)}</td><td>{fmt(vb)}</td><td class=\"delta\">{fmt(delta)}</td>"
            qa, qb = per_question_forget(ca), per_question_forget(cb)
            if qa and qb:
                d, lo, hi = bootstrap_diff(qa, qb)
                real = lo > 0 or hi < 0
                interval = (f'<td class="{"real" if real else ""}">{d:+.3f} [{lo:+.3f}, {hi:+.3f}]'
                            f'{" (interval excludes 0)" if real else ""}</td>')
            else:
                interval = "<td>-- (no per-question values)</td>"
            rows.append(f'<tr><td>{esc(ca["benchmark"])} {esc(ca["split"])}</td><td>{esc(label(ca["method"]))}</td>{cells}{interval}</tr>')
        head = "".join(f"<th>{esc(h)}: {esc(la)}</th><th>{esc(lb)}</th><th>difference</th>" for _, h in SUMMARY)
        parts.append(f"<h3>{esc(lb)} against {esc(la)}</h3><table class=\"compare\"><thead><tr><th>split</th><th>method</th>"
                     f"{head}<th>forget measure per question: difference [95% bootstrap]</th></tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    return "".join(parts)


# ---------------------------------------------------------------- the page
CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1200px;color:#222;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;vertical-align:top}
th{background:#f5f5f5}table.summary td{text-align:right}table.summary td:first-child{text-align:left}
th[data-sort]{cursor:pointer}th[data-sort]:after{content:" \\2195";color:#aaa}
tr.gold{background:#fff8e1}.badge{background:#f0b400;color:#fff;border-radius:3px;padding:0 4px;font-size:11px}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{width:420px;height:300px;border:1px solid #eee}
.chart text{font-size:11px}.chart .tick{fill:#666}.dot{fill:#1f77b4;stroke:#000}.dot.gold{fill:#f0b400}.err{stroke:#1f77b4;fill:none;opacity:.6}.leader{stroke:#aaa}
.identity th{text-align:left}.failed{color:#b00020}details{margin:6px 0}summary{cursor:pointer;font-weight:600}
table.drill td{max-width:260px;overflow-wrap:anywhere;font-size:12px}table.drill td:first-child{white-space:nowrap}td.delta{font-weight:600}td.real{background:#e8f5e9}
button.more{margin:4px 0}
"""

JS = """
function num(v){return v===''||v===undefined?NaN:parseFloat(v)}
document.querySelectorAll('table.sortable th').forEach(function(th,i){th.addEventListener('click',function(){
  var tb=th.closest('table').tBodies[0],rows=Array.from(tb.rows),asc=th.dataset.dir!=='asc';th.dataset.dir=asc?'asc':'desc';
  rows.sort(function(a,b){var x=a.cells[i].dataset.v,y=b.cells[i].dataset.v;
    if(th.dataset.sort==='num'){x=num(x);y=num(y);if(isNaN(x))return 1;if(isNaN(y))return -1;return asc?x-y:y-x}
    return asc?String(x).localeCompare(y):String(y).localeCompare(x)});
  rows.forEach(function(r){tb.appendChild(r)})})});
var DRILL=JSON.parse(document.getElementById('drill-data').textContent);
function cellText(v){if(v===null||v===undefined)return '--';if(typeof v==='number')return Number.isInteger(v)?String(v):v.toFixed(3);return String(v)}
function display(d,row){if(!d.layout)return row;var s=DRILL.shared[d.shared][row[0]]||[];
  return d.layout.map(function(p){return p[0]==='r'?row[p[1]]:s[p[1]]})}
function renderMore(d,box){var tb=box.querySelector('tbody'),shown=tb.rows.length,n=Math.min(shown+PAGE,d.rows.length);
  for(var r=shown;r<n;r++){var tr=document.createElement('tr');display(d,d.rows[r]).forEach(function(v){var td=document.createElement('td');td.textContent=cellText(v);tr.appendChild(td)});tb.appendChild(tr)}
  var btn=box.querySelector('button.more');btn.hidden=n>=d.rows.length;box.querySelector('.count').textContent=n+' of '+d.rows.length+' rows shown'}
function openDrill(det){if(det.dataset.done)return;det.dataset.done='1';var d=DRILL.cells[+det.dataset.i],box=det.querySelector('.box');
  if(!d.rows.length){box.textContent='no per-question values in this cell';return}
  var t=document.createElement('table');t.className='drill';var hr=document.createElement('tr');
  d.columns.forEach(function(c){var th=document.createElement('th');th.textContent=c;hr.appendChild(th)});
  t.appendChild(document.createElement('thead')).appendChild(hr);t.appendChild(document.createElement('tbody'));
  var p=document.createElement('p');p.className='count';var b=document.createElement('button');b.className='more';b.textContent='show '+PAGE+' more';
  b.addEventListener('click',function(){renderMore(d,box)});box.appendChild(p);box.appendChild(t);box.appendChild(b);renderMore(d,box)}
document.querySelectorAll('details.drill').forEach(function(det){det.addEventListener('toggle',function(){if(det.open)openDrill(det)})});
var m=location.hash.match(/^#open=(.+)$/);if(m){var det=document.getElementById('drill-'+decodeURIComponent(m[1]));if(det){det.open=true;openDrill(det)}}
"""


def render(docs: list[tuple[str, dict]]) -> str:
    """The page for one run (``docs`` of length 1), or the first run's page with its comparison to the others."""
    title, doc = docs[0]
    cells, run = doc["cells"], doc["run"]
    body = [f"<h1>unlearn report: {esc(title)}</h1>", "<h2>Run</h2>", identity_table(run)]
    if len(docs) > 1:
        body += ["<h2>Compared runs</h2>", "<p>Same protocol, model and data required; the difference is the later run "
                 "minus the first, with a 95% bootstrap interval over the per-question forget values.</p>",
                 comparison_table(docs)]
    failed = run.get("failed") or []
    if failed:
        body.append('<h2 class="failed">Cells that stopped</h2><ul class="failed">' + "".join(
            f"<li>{esc(f['benchmark'])}/{esc(f['split'])}/{esc(f['method'])}: {esc(f['error'])}</li>" for f in failed) + "</ul>")
    for (bench, split), rows in by_benchmark_split(cells).items():
        body.append(f'<h2 id="{esc(bench)}-{esc(split)}">{esc(bench.upper())} {esc(split)}</h2>')
        body.append(summary_table(bench, split, rows))
        charts = [scatter_svg(rows), dynamics_svg(rows)]
        body.append('<div class="charts">' + "".join(c for c in charts if c) + "</div>")
    drill = drilldown(cells)
    body.append("<h2>Per question</h2><p>Each cell's forget questions (other benchmarks: their per-question values), "
                "sorted by what still leaks; opened on demand.</p>")
    for i, d in enumerate(drill["cells"]):
        body.append(f'<details class="drill" id="drill-{esc(d["id"])}" data-i="{i}"><summary>{esc(d["title"])} '
                    f'({len(d["rows"])} rows{", sorted by " + esc(d["leak"]) if d["leak"] else ""})</summary>'
                    f'<div class="box"></div></details>')
    # every "<" as \u003c (JSON.parse reads it back): the block then holds no "</script", nor the "<!--" + "<script"
    # that would make the HTML tokenizer run past the block's own end tag and swallow the page's script
    data = json.dumps(drill, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            f"<title>unlearn report: {esc(title)}</title><style>{CSS}</style></head><body>" + "".join(body)
            + f'<script type="application/json" id="drill-data">{data}</script>'
            + f"<script>var PAGE={PAGE_ROWS};{JS}</script></body></html>")


def write_report(doc: dict, path: Path, title: str | None = None) -> Path:
    path = Path(path)
    atomic_write(path, render([(title or str(path.parent), doc)]))
    return path


def report_runs(run_dirs: list[str], out: str | None = None) -> Path:
    """``unlearn report``: the page of one run (default ``RUN_DIR/report.html``), or the first run compared with
    the others (default ``report.html`` in the current folder)."""
    docs = [(str(d), read_results(d)) for d in run_dirs]
    target = Path(out) if out else (Path(run_dirs[0]) / "report.html" if len(docs) == 1 else Path("report.html"))
    atomic_write(target, render(docs))  # render refuses runs that cannot be compared before anything is written
    return target


def eval_doc(result: dict) -> dict:
    """An ``unlearn eval`` result as a one-cell results document (no target or gold: the summary columns stay
    empty; the benchmark's own metrics and the per-question drill-down are shown)."""
    from unlearn.provenance import git_commit
    from unlearn.report import SCHEMA_VERSION

    model = result["model"] + (f" + {result['adapter']}" if result.get("adapter") else "")
    per_question = dict(result.get("per_question") or {})
    if result.get("logs"):
        per_question["logs"] = result["logs"]
    cell = {"benchmark": result["benchmark"], "split": result["split"], "method": "evaluated model", "summary": {},
            "metrics": result["metrics"], "per_question": per_question}
    run = {"model": model, "quant": result.get("quant"), "data": {result["benchmark"]: [result.get("data")]},
           "protocol": result.get("protocol"), "precision": result.get("precision"), "device": result.get("device"),
           "numerics": result.get("numerics"), "wall_s": result.get("wall_s"), "git_commit": git_commit()}
    return {"schema_version": SCHEMA_VERSION, "run": run, "cells": [cell]}


def synthetic_results(methods: int = 11, splits: tuple[tuple[str, int], ...] = (("forget01", 40), ("forget05", 200),
                                                                                 ("forget10", 400)), seed: int = 0) -> dict:
    """A TOFU results document of generated values (no model) with the shape of a real grid: ``methods`` methods
    plus the gold row per split, each with per-question logs of the given number of forget rows. For measuring
    the page at full-grid size and for tests."""
    from unlearn.report import SCHEMA_VERSION

    rng = np.random.default_rng(seed)
    names = [f"method_{i:02d}" for i in range(methods)] + ["retrain"]
    cells = []
    for split, n in splits:
        questions = [f"What is fact {i} about author {i % 7} of {split}?" for i in range(n)]
        for m in names:
            rouge = rng.uniform(0, 1, n)
            gen = {str(i): [f"Question: {q}\nAnswer:", f"{m} says fact {i} is {rng.integers(1000)}", f"Fact {i} is {i}."]
                   for i, q in enumerate(questions)}
            logs = {"forget": {"generated_text": gen, "rougeL_recall": {str(i): float(v) for i, v in enumerate(rouge)},
                               "truth_ratio": {str(i): float(v) for i, v in enumerate(rng.uniform(0.2, 1, n))}}}
            steps = [{"step": s, "forget_prob": float(0.9 * np.exp(-s / (5 + len(m)))), "retain_prob": float(0.8 - s / 100)}
                     for s in (0, 5, 10, 15)]
            cells.append({"benchmark": "tofu", "split": split, "method": m,
                          "summary": {"forget_efficacy": float(rng.uniform()), "retain_performance": float(rng.uniform(0.6, 1.1)),
                                      "mia_auc": float(rng.uniform(0.4, 1))},
                          "metrics": {"forget_rouge": float(rouge.mean()), "model_utility": float(rng.uniform(0.3, 0.6))},
                          "per_question": {"logs": logs, "target_forget": {
                              "generated_text": [f"target says fact {i} is {i}" for i in range(n)],
                              "rougeL_recall": [1.0] * n}},
                          "dynamics": None if m == "retrain" else steps, "data": {"hash": f"synthetic-{split}"},
                          "schema_version": SCHEMA_VERSION})
    run = {"model": "synthetic", "protocol": "synthetic full-size grid", "precision": "fp32", "device": "cpu",
           "data": {"tofu": ["synthetic"]}, "wall_s": 0.0, "failed": []}
    return {"schema_version": SCHEMA_VERSION, "run": run, "cells": cells}
