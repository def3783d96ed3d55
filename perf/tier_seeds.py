"""What the tiny tier can decide, from a three-seed run of the eval grid.

    UNLEARN_EVAL_DUMP=/tmp/seeds.json pytest -n 2 --dist loadgroup evals --seeds 3 -m "tofu or muse or wmdp or unsafe"
    python perf/tier_seeds.py /tmp/seeds.json.gw0 /tmp/seeds.json.gw1 [--write]

For every expectation row of every cell it decides each seed's verdict (unlearn/gate/verdicts.py: the value's interval
against the bar, membership rows over units with the gold's calibration gate, the retain floor). A row is
*decidable* on the tier when the three seeds give the same decisive outcome (all pass or all fail) and the
row's value varies by sd <= 0.05 over them; every other row is declared undecided (``evals/undecided.json``),
with the seeds' values as the reason. The snapshot tolerance of each benchmark's metric is the widest
difference between two seeds of one cell (``unlearn/gate/tolerances.json``). Prints the per-cell table (efficacy /
retain / MIA AUC per seed and their sd) and the counts of asserted, inconclusive and known-failure rows.
``--write`` writes the two JSON files (docs/results.md's tables: perf/results_tables.py).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evals.expectations import (DEFAULT_EXPECTATIONS, MUSE_EXPECTATIONS, ROBUSTNESS_EXPECTATIONS,  # noqa: E402
                                TOFU_EXPECTATIONS, UNSAFE_DEFAULT, UNSAFE_EXPECTATIONS, WMDP_EXPECTATIONS,
                                expectation_rows)
from unlearn.gate.verdicts import FAIL, PASS, RETAIN_FLOOR, meets, verdict  # noqa: E402
from unlearn.gate.snapshots import metric_snapshot_of  # noqa: E402
from unlearn.intervals import cluster_ids, membership_intervals  # noqa: E402

SD_MAX = 0.05
TOLERANCE_FACTOR = 2.0  # snapshot tolerance = this x the widest difference between two seeds of one cell
UNITS = {"tofu": 20, "wmdp": 6, "muse": 1, "unsafe": 1}  # membership rows per unit (Benchmark.mia_unit_size)


def rows_of(bench: str, method: str) -> list:
    table, default = {"tofu": (TOFU_EXPECTATIONS, DEFAULT_EXPECTATIONS), "muse": (MUSE_EXPECTATIONS, DEFAULT_EXPECTATIONS),
                      "wmdp": (WMDP_EXPECTATIONS, DEFAULT_EXPECTATIONS),
                      "unsafe": (UNSAFE_EXPECTATIONS, UNSAFE_DEFAULT)}[bench]
    rows = expectation_rows(table, method, default)
    return rows + (ROBUSTNESS_EXPECTATIONS.get(method, []) if bench == "tofu" else [])


def membership(bench: str, pq: dict, gold_pq: dict) -> dict | None:
    """The cluster-bootstrap intervals a cell gets in this code (the dump's cells may predate them)."""
    try:
        m, n = pq["mia_forget"]["min_k_plus_plus"], pq["mia_holdout"]["min_k_plus_plus"]
        gm, gn = gold_pq["mia_forget"]["min_k_plus_plus"], gold_pq["mia_holdout"]["min_k_plus_plus"]
    except (KeyError, TypeError):
        return None
    if not m or not n:
        return None
    size = UNITS[bench]
    return membership_intervals(m, n, cluster_ids(len(m), size), cluster_ids(len(n), size), gm, gn)


def load(paths: list[str], seeds: int = 3) -> list[dict]:
    """Cells of `pytest evals --seeds N` dumps (JSON lists) and of perf/seed_cells.py (JSON lines, one seed a line,
    grouped here); a cell without all of seeds 0..N-1 is left out (said on stderr)."""
    cells, lines = [], {}
    for p in paths:
        text = Path(p).read_text()
        if p.endswith(".jsonl"):
            for row in map(json.loads, text.splitlines()):
                lines.setdefault((row["benchmark"], row["method"], row["split"]), {})[row["seed"]] = row
        else:
            cells += json.loads(text)
    for (bench, method, split), by_seed in sorted(lines.items()):
        if sorted(by_seed) != list(range(seeds)):
            print(f"left out {bench} {method} {split}: seeds {sorted(by_seed)}", file=sys.stderr)
            continue
        cells.append({"benchmark": bench, "method": method, "split": split, "seeds": [by_seed[i] for i in range(seeds)]})
    return cells


def seed_cells(cells: list[dict]) -> dict:
    """(bench, method, split) -> [seed cell dicts ready for unlearn.gate.verdicts.verdict]."""
    raw = {(c["benchmark"], c["method"], c["split"]): c for c in cells}
    out = {}
    for (bench, method, split), c in raw.items():
        seeds = c.get("seeds") or [{k: c.get(k) for k in ("summary", "metrics", "intervals", "per_question")}]
        gold = raw.get((bench, "retrain", split))
        golds = (gold.get("seeds") or [gold]) if gold else [None] * len(seeds)
        built = []
        for s, g in zip(seeds, golds):
            iv = dict(s.get("intervals") or {})
            if not iv.get("membership"):
                iv["membership"] = membership(bench, s.get("per_question") or {}, (g or {}).get("per_question") or {})
            built.append({"benchmark": bench, "method": method, "split": split, "summary": s["summary"],
                          "metrics": s["metrics"], "intervals": iv})
        out[bench, method, split] = built
    return out


def fmt(x) -> str:
    return "--" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def classify(cells: dict) -> tuple[dict, dict, list]:
    """(undecided {key: reason}, outcomes {key: outcome}, report lines)."""
    undecided, decided = {}, {}
    for (bench, method, split), seeds in sorted(cells.items()):
        for name, direction, bound in rows_of(bench, method):
            vs = [verdict(c, name, direction, bound) for c in seeds]
            values = [v.value for v in vs]
            sd = statistics.pstdev(values) if len(values) > 1 else 0.0
            outcomes = {v.outcome for v in vs}
            key = f"{bench}|{method}|{split}|{name}"
            seeds_text = " / ".join(f"{fmt(v.value)}{'' if not v.interval else f' [{fmt(v.interval[0])}, {fmt(v.interval[1])}]'} {v.outcome}"
                                    for v in vs)
            if len(outcomes) == 1 and outcomes <= {PASS, FAIL} and sd <= SD_MAX:
                decided[key] = vs[0].outcome
            else:
                why = ("the seeds disagree" if len(outcomes) > 1 else
                       "every seed's interval straddles the bar or the row has no interval" if outcomes != {PASS} and outcomes != {FAIL}
                       else f"sd {sd:.3f} over seeds > {SD_MAX}")
                undecided[key] = f"{why}: seeds 0/1/2 {seeds_text} (want {direction} {bound})"
    return undecided, decided, []


def reason(method: str, name: str, direction: str, bound: float, values: list) -> str:
    """One line for a decidable failure: what the method does on the tier, then the measured values."""
    seeds = " / ".join(fmt(v) for v in values)
    what = {
        ("forget_efficacy", ">="): f"{method} at the tier's tuned setting leaves the forget answers near the target's",
        ("forget_efficacy", "<="): "the control, retain fine-tuning at the methods' largest lr, moves the from-scratch "
                                   "model's forget answers as unlearning does",
        ("retain_performance", ">="): f"{method}'s updates cost the rest of the model more than the bar allows",
        ("relearn_excess", "<="): "a few forget rows bring the answers back faster than they teach the gold (shallow "
                                  "forgetting)",
        ("over_refusal", "<="): f"{method} makes the model refuse the benign look-alike requests",
        ("mia_gap", "<="): f"{method}'s forget rows still score unlike the gold's",
        ("mia_offset", "<="): "the gold's forget rows score unlike never-seen ones on this split",
    }.get((name, direction), f"{method} misses {name} {direction} {bound}")
    return f"{what}: measured {name}={seeds} on seeds 0/1/2 (want {direction} {bound})"


def known_failures(cells: dict, decided: dict) -> dict:
    """{bench: {(method, split, row): reason}} of the decidable failures."""
    out: dict = {}
    for key, outcome in sorted(decided.items()):
        if outcome != FAIL:
            continue
        bench, method, split, name = key.split("|")
        row = next(r for r in rows_of(bench, method) if r[0] == name)
        seeds = cells[bench, method, split]
        values = [verdict(c, *row).value for c in seeds]
        if all(meets(v, row[1], row[2]) for v in values):  # the bar is met: the retain floor fails it
            retain = " / ".join(fmt(c["summary"].get("retain_performance")) for c in seeds)
            why = (f"{method} meets {name} {row[1]} {row[2]} ({' / '.join(fmt(v) for v in values)}) only by breaking the "
                   f"model: measured retain_performance={retain} on seeds 0/1/2, under the floor {RETAIN_FLOOR}")
        else:
            why = reason(method, *row, values)
        out.setdefault(bench, {})[(method, split, name)] = why
    return out


TABLE_NAMES = {"tofu": "KNOWN_FAILURES", "muse": "MUSE_KNOWN_FAILURES", "wmdp": "WMDP_KNOWN_FAILURES",
               "unsafe": "UNSAFE_KNOWN_FAILURES"}


def rewrite_known_failures(known: dict) -> None:
    """Replace each benchmark's known-failure table in evals/expectations.py by the decidable failures, keeping the
    ("target", ...) entries of the sanity tests (not decided here); an empty table is written ``{}``."""
    path = ROOT / "evals" / "expectations.py"
    text = path.read_text()
    for bench, table in TABLE_NAMES.items():
        head = f"{table}: dict[tuple[str, str, str], str] = "
        start = text.index(head) + len(head)
        end = start + 2 if text.startswith("{}", start) else text.index("\n}", start) + 2
        kept = [line for line in text[start:end].splitlines() if line.strip().startswith('("target"')]
        body = kept + [f"    ({m!r}, {s!r}, {n!r}): {why!r}," for (m, s, n), why in sorted(known.get(bench, {}).items())]
        text = text[:start] + ("{\n" + "\n".join(body) + "\n}" if body else "{}") + text[end:]
    path.write_text(text)


GRID = {"tofu": ("forget01", "forget05", "forget10"), "muse": ("news", "news-scal", "news-sust"),
        "wmdp": ("synthetic",), "unsafe": ("synthetic",)}


def unmeasured_rows(cells: dict) -> dict:
    """Every row of a tiny-tier cell that was not measured on the seeds: undecided until it is."""
    from unlearn.methods import method_names

    out = {}
    for bench, splits in GRID.items():
        for split in splits:
            for method in method_names():
                if (bench, method, split) in cells:
                    continue
                for name, direction, bound in rows_of(bench, method):
                    out[f"{bench}|{method}|{split}|{name}"] = (
                        f"not measured on seeds 0/1/2 yet (perf/seed_cells.py): no evidence that one run decides it "
                        f"(want {direction} {bound})")
    return out


def unmeasured_splits(cells: dict) -> list[str]:
    return [f"{b}|{s}" for b, splits in GRID.items() for s in splits
            if not any(k[0] == b and k[2] == s for k in cells)]


def tolerances(cells: dict) -> dict:
    out: dict = {}

    def flat(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flat(v)
            else:
                yield k, v

    for (bench, method, split), seeds in cells.items():
        per_seed = [dict(flat(metric_snapshot_of(bench)(c))) for c in seeds]
        for key in per_seed[0]:
            vals = [s.get(key) for s in per_seed]
            if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in vals):
                continue
            spread = max(vals) - min(vals)
            out.setdefault(bench, {})
            out[bench][key] = max(out[bench].get(key, 0.0), float(spread))
    # twice the widest seed-to-seed difference: three draws understate the spread (a nudged run of TOFU forget01
    # moved grad_ascent's forget ROUGE by 0.455, past the widest seed difference of 0.442)
    return {b: {k: round(TOLERANCE_FACTOR * v, 4) for k, v in sorted(m.items())} for b, m in sorted(out.items())}


def sometimes_undefined(cells: dict) -> list[str]:
    """``benchmark|method|split|metric`` of every snapshotted value that is None on some seeds and a number on
    others (the snapshot cannot pin whether it is defined)."""
    out = set()
    for (bench, method, split), seeds in cells.items():
        per_seed = [metric_snapshot_of(bench)(c) for c in seeds]
        for key in per_seed[0]:
            missing = [s.get(key) is None for s in per_seed]
            if any(missing) and not all(missing):
                out.add(f"{bench}|{method}|{split}|{key}")
    return sorted(out)


def table(cells: dict) -> list[str]:
    lines = ["| benchmark | split | method | efficacy (seeds 0/1/2; sd) | retain | MIA AUC |", "|---|---|---|---|---|---|"]
    for (bench, method, split), seeds in sorted(cells.items()):
        cols = []
        for name in ("forget_efficacy", "retain_performance", "mia_auc"):
            vals = [c["summary"].get(name) for c in seeds]
            ok = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
            sd = statistics.pstdev(ok) if len(ok) > 1 else float("nan")
            cols.append(" / ".join(fmt(v) for v in vals) + f"; {fmt(sd)}")
        lines.append(f"| {bench} | {split} | {method} | " + " | ".join(cols) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--sanity", action="append", default=[],
                    help="UNLEARN_VERDICTS file of a --seeds 3 run of the target/gold sanity tests: their inconclusive "
                         "rows are declared undecided too")
    args = ap.parse_args()
    cells = seed_cells(load(args.dumps))
    n_seeds = {len(v) for v in cells.values()}
    undecided, decided, _ = classify(cells)
    unmeasured = unmeasured_rows(cells)
    undecided.update(unmeasured)
    for path in args.sanity:
        for r in json.loads(Path(path).read_text())["rows"]:
            if r["method"] == "target" and r["outcome"] == "inconclusive" and r.get("seeds"):
                undecided[f"{r['benchmark']}|target|{r['split']}|{r['row']}"] = (
                    f"{r['why'].split(';')[0]}: seeds 0/1/2 " + " / ".join(s['why'] for s in r["seeds"]))
    tol = tolerances(cells)
    print("\n".join(table(cells)))
    counts = {"decidable pass": sum(o == PASS for o in decided.values()),
              "decidable fail (known failures)": sum(o == FAIL for o in decided.values()),
              "undecided (inconclusive)": len(undecided)}
    print(f"\nseeds per cell: {sorted(n_seeds)}; rows: {counts}")
    for bench, rows in known_failures(cells, decided).items():
        print(f"\n# {bench} known failures")
        for (method, split, name), why in rows.items():
            print(f"    ({method!r}, {split!r}, {name!r}): {why!r},")
    if args.write:
        source = ("pytest evals --seeds 3 (tiny-qwen3, numerics pins), perf/tier_seeds.py: a row is decidable when its "
                  f"three seeds give one decisive verdict and its value's sd <= {SD_MAX}")
        (ROOT / "evals" / "undecided.json").write_text(json.dumps({"source": source, "rows": undecided}, indent=1) + "\n")
        (ROOT / "unlearn" / "gate" / "tolerances.json").write_text(json.dumps(
            {"source": f"{TOLERANCE_FACTOR:g} x the widest difference between two seeds of one cell, per benchmark and "
                       "metric (perf/seed_cells.py on seeds 0/1/2, perf/tier_seeds.py): three draws understate the "
                       "spread (a run from weights nudged by 2 ulps moved TOFU grad_ascent forget01's forget ROUGE by "
                       "0.455, past the widest seed difference 0.442); unmeasured: splits none of whose cells ran on "
                       "the seeds (their snapshots check structure only)",
             "tolerances": tol, "unmeasured": unmeasured_splits(cells),
             "sometimes_undefined": sometimes_undefined(cells)}, indent=1) + "\n")
        rewrite_known_failures(known_failures(cells, decided))
        print("wrote evals/undecided.json, unlearn/gate/tolerances.json and the known-failure tables of evals/expectations.py")


if __name__ == "__main__":
    main()
