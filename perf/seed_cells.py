"""Run tiny-tier cells on several seeds in one process, writing each cell as one JSON line as soon as it is done
(an interrupted run keeps every finished cell): the input of perf/tier_seeds.py, like a `pytest evals --seeds N`
dump but incremental.

    python perf/seed_cells.py --benchmarks tofu --seeds 0 1 2 --out /tmp/cells.jsonl [--methods ...] [--splits ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from unlearn.numerics import pin_numerics, set_threads  # noqa: E402

pin_numerics()
set_threads()


def make(name: str, seed: int):
    from unlearn.benchmarks import BENCHMARKS, TofuBenchmark

    if name == "tofu":  # as evals/conftest.py builds it (the target gets the full evaluation)
        return TofuBenchmark("tiny-qwen3", target_eval="full", seed=seed, progress=False)
    return BENCHMARKS.get(name)("tiny-qwen3", protocol=None, seed=seed, progress=False)


def main() -> None:
    from unlearn.methods import method_names

    ap = argparse.ArgumentParser()
    ap.add_argument("--benchmarks", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--methods", nargs="+", default=None)
    ap.add_argument("--splits", nargs="+", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    done = set()
    out = Path(args.out)
    if out.is_file():
        done = {(r["benchmark"], r["method"], r["split"], r["seed"]) for r in map(json.loads, out.read_text().splitlines())}
    for name in args.benchmarks:
        for seed in args.seeds:
            bench = make(name, seed)
            splits = [s for s in (args.splits or bench.splits) if s in bench.splits] if name != "wmdp" and name != "unsafe" else ["synthetic"]
            for split in splits:
                for method in args.methods or method_names():
                    if (name, method, split, seed) in done:
                        continue
                    t = time.time()
                    c = bench.run_cell(method, split, {})
                    pq = c.get("per_question") or {}
                    row = {"benchmark": name, "method": method, "split": split, "seed": seed, "summary": c["summary"],
                           "metrics": c["metrics"], "intervals": c.get("intervals"),
                           "per_question": {k: pq[k] for k in ("mia_forget", "mia_holdout") if k in pq},
                           "wall_s": round(time.time() - t, 1)}
                    with out.open("a") as f:
                        f.write(json.dumps(row, allow_nan=True) + "\n")
                    print(name, seed, split, method, row["wall_s"], flush=True)


if __name__ == "__main__":
    main()
