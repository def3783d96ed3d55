"""Wall time of one full unlearning run (no evaluation) of IWAP against NPO on the same cell, each with the
settings the tier's cells use (its tuned settings; --defaults: the config classes' defaults and the shared
schedule). Also prints the tokens each run passed through the model (NPO's frozen reference not counted).

Run: python perf/cost_iwap_vs_npo.py [--model tiny-qwen3] [--split forget10] [--repeats 3]
Targets are built (or read from the cache) first and not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from unlearn.numerics import pin_numerics, set_threads

pin_numerics()  # before torch: the tiny tier's targets are built (and cached) under the pins, as in the tests
set_threads()

from unlearn.benchmarks import TofuBenchmark  # noqa: E402
from unlearn.benchmarks.base import TokenCounter  # noqa: E402
from unlearn.methods import get_method, make_config, schedule_overrides  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="tiny-qwen3")
    ap.add_argument("--split", default="forget10")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dry-run", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--defaults", action="store_true", help="config defaults instead of the tier's settings")
    args = ap.parse_args()
    bench = TofuBenchmark(args.model, data_dir=args.data_dir, dry_run=args.dry_run, progress=False)
    target = bench.target_dir(args.split)
    settings = {} if args.defaults else bench.profile.method_overrides
    times: dict[str, list[float]] = {"npo": [], "iwap": []}
    tokens: dict[str, int] = {}
    for _ in range(args.repeats):
        for method in times:
            ctx = bench.context(args.split, bench.load(target), schedule_overrides(method, settings))
            cfg = make_config(method, settings)
            start = time.perf_counter()
            with TokenCounter(ctx.lm.model) as counter:
                get_method(method).run(ctx, cfg)
            times[method].append(time.perf_counter() - start)
            tokens[method] = counter.tokens
    med = {m: statistics.median(t) for m, t in times.items()}
    print(f"{args.model} {args.split}, {'config defaults' if args.defaults else 'tier settings'}: {settings.get('npo')}, "
          f"{settings.get('iwap')}")
    for m, t in med.items():
        print(f"{m:5s} median {t:7.2f} s over {args.repeats} runs: {[round(x, 2) for x in times[m]]}; {tokens[m]} tokens")
    print(f"IWAP / NPO wall time: {med['iwap'] / med['npo']:.3f}")


if __name__ == "__main__":
    main()
