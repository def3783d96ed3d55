"""Rewrite the tiny tier's snapshot entries that a dumped run (UNLEARN_EVAL_DUMP, seed 0) moved beyond the tier's
tolerances (unlearn/gate/snapshots.py), exactly as syrupy would write them; prints each rewritten entry and why. For a
change whose cells were already measured in a long run (e.g. `pytest evals --seeds 3`), instead of running the cells
again with --snapshot-update.

    python perf/snapshot_from_dump.py DUMP.gw0 DUMP.gw1 [--write] [--all]

``--all`` rewrites every entry of the dumped cells (a recipe change: the snapshot then holds the new tier's seed 0,
not an older tier's value that happens to lie within the tolerance).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from syrupy.extensions.amber.serializer import AmberDataSerializer  # noqa: E402

from unlearn.gate.snapshots import flatten_amber, metric_snapshot_of, within  # noqa: E402

TESTS = {"tofu": "test_tofu_snapshot", "muse": "test_muse_snapshot", "wmdp": "test_wmdp_snapshot",
         "unsafe": "test_unsafe_snapshot"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("dumps", nargs="+")
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--all", action="store_true", help="rewrite every entry of the dumped cells, moved or not")
    args = ap.parse_args()
    cells = []
    for p in args.dumps:  # a pytest dump (JSON list) or perf/seed_cells.py lines (their seed-0 cells)
        text = Path(p).read_text()
        cells += ([r for r in map(json.loads, text.splitlines()) if r["seed"] == 0] if p.endswith(".jsonl")
                  else json.loads(text))
    for bench, test in TESTS.items():
        path = ROOT / "snapshots" / f"test_{bench}" / f"test_{bench}.ambr"
        text = path.read_text()
        for c in cells:
            if c["benchmark"] != bench:
                continue
            seed0 = (c.get("seeds") or [c])[0]
            new = AmberDataSerializer.serialize(metric_snapshot_of(bench)({**c, **seed0}))
            name = f"# name: {test}[{c['method']}-{c['split']}]\n"
            m = re.search(re.escape(name) + r"(.*?)\n# ---", text, re.S)
            if not m:
                print(f"{bench} {c['method']} {c['split']}: no snapshot entry")
                continue
            old = m.group(1)
            indented = "\n".join("  " + line for line in new.splitlines())
            moved = within(bench, flatten_amber(indented), flatten_amber(old))
            if moved or (args.all and indented != old):
                print(f"{bench} {c['method']}-{c['split']}: {'; '.join(moved) or 'within the tolerances (--all)'}")
                text = text[:m.start(1)] + indented + text[m.end(1):]
        if args.write:
            path.write_text(text)


if __name__ == "__main__":
    main()
