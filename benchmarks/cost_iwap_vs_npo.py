"""Wall time of one full unlearning run (no evaluation) of IWAP against NPO on the same cell.

Run: python benchmarks/cost_iwap_vs_npo.py [--model tiny-qwen3] [--split forget10] [--repeats 3]
Targets are built (or read from the cache) first and not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from unlearn.benchmarks import TofuBenchmark
from unlearn.methods import make_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="tiny-qwen3")
    ap.add_argument("--split", default="forget10")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    bench = TofuBenchmark(args.model, data_dir=args.data_dir, dry_run=args.dry_run, progress=False)
    target = bench.target_dir(args.split)
    times: dict[str, list[float]] = {"npo": [], "iwap": []}
    for _ in range(args.repeats):
        for method in times:
            ctx = bench.context(args.split, bench.load(target))
            start = time.perf_counter()
            from unlearn.methods import get_method

            get_method(method).run(ctx, make_config(method))
            times[method].append(time.perf_counter() - start)
    med = {m: statistics.median(t) for m, t in times.items()}
    for m, t in med.items():
        print(f"{m:5s} median {t:7.2f} s over {args.repeats} runs: {[round(x, 2) for x in times[m]]}")
    print(f"IWAP / NPO wall time: {med['iwap'] / med['npo']:.3f}")


if __name__ == "__main__":
    main()
