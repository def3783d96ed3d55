"""docs/results.md's tables from perf/seed_cells.py's JSON lines: per benchmark and split, each method's forget
efficacy, retain performance and MIA AUC on every seed (seed 0 / 1 / 2).

    python perf/results_tables.py SEED_CELLS.jsonl > tables.md
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict


def fmt(x) -> str:
    return "-" if x is None or x != x else f"{x:.2f}"


def tables(rows: list[dict]) -> str:
    cells = defaultdict(dict)
    for r in rows:
        cells[r["benchmark"], r["split"], r["method"]][r["seed"]] = r["summary"]
    out = []
    for bench in dict.fromkeys(b for b, _, _ in cells):
        for split in dict.fromkeys(s for b, s, _ in cells if b == bench):
            seeds = sorted({seed for (b, s, _), per in cells.items() if (b, s) == (bench, split) for seed in per})
            out += [f"### {bench} {split}", "", "| method | forget efficacy | retain performance | MIA AUC |",
                    "|---|---|---|---|"]
            for (b, s, m), per in cells.items():
                if (b, s) != (bench, split):
                    continue
                col = lambda k: " / ".join(fmt(per.get(seed, {}).get(k)) for seed in seeds)  # noqa: E731
                out.append(f"| {'retrain (gold)' if m == 'retrain' else m} | {col('forget_efficacy')} | "
                           f"{col('retain_performance')} | {col('mia_auc')} |")
            out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    print(tables([json.loads(line) for line in open(sys.argv[1]) if line.strip()]))
