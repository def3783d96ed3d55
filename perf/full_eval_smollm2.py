"""Wall time of one full TOFU evaluation (published protocol: all metrics, forget01, 300-row caps,
greedy <= 200 new tokens) of the base smollm2-135m with this suite's evaluator.

Run: python perf/full_eval_smollm2.py --data-dir DATA [--batch 16]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from unlearn.benchmarks.tofu.data import load_tofu
from unlearn.benchmarks.tofu.benchmark import evaluate_tofu
from unlearn.benchmarks.tofu.protocol import EvalProtocol
from unlearn.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default=None, help="TOFU folder (default: the embedded copy)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--split", default="forget01")
    ap.add_argument("--bf16", action="store_true", help="bf16 autocast (AMX CPUs, GPUs)")
    args = ap.parse_args()
    data = load_tofu(args.split, Path(args.data_dir) if args.data_dir else None)
    lm = load_model("smollm2-135m")
    start = time.perf_counter()
    protocol = EvalProtocol(batch_size=args.batch, bf16=args.bf16)
    result = evaluate_tofu(lm.model, lm.tokenizer, data, protocol)
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": round(wall, 1), "protocol": protocol.describe(), **result["aggregates"],
                      "extraction_strength": result["extraction_strength"], **result["mia"]}, indent=1))


if __name__ == "__main__":
    main()
