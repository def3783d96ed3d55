"""Old and new TOFU evaluator, A/B/A/B in one process on the same model: median wall ratio and whether every
output is the same.

"old" is the evaluator without this suite's exact shortcuts: transformers' ``generate`` (every row decoded
until its batch ends), no shared prompt prefix, answers padded to the longest of their batch, scoring then
generation on all of torch's threads, and under open-unlearning's conventions that tool's generation batches
of 32. "new" is what ``unlearn eval`` runs on a CPU: ``greedy_batch`` (finished rows leave the batch) in the
full protocol's CPU generation batches (``sized_for``: 128), the prompts' common prefix (a chat template's
system prompt) computed once per call, answers in length-matched sub-batches, and in float32 the scoring and
the generation batches in two lanes of one thread each (``unlearn.scoring.lanes``). Greedy texts must be equal; scores are compared per question (largest
absolute difference of every per-question log value).

Kernels as ``unlearn eval`` runs them: unpinned for a real model (the CLI pins only the tiny tier), so both paths
use this CPU's native MKL and ATen code, as open-unlearning does; ``--pinned`` runs both under the tiny tier's
AVX2 pins instead (``unlearn.numerics``).

Run: python perf/eval_speed.py --data-dir DATA [--protocol reduced|full] [--model PATH] [--rounds 2] [--pinned]
Absolute times on shared machines are noise; the ratio within one process is the figure.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from unlearn.numerics import pin_numerics, set_threads

if "--pinned" in sys.argv:  # before torch is imported
    pin_numerics()
    set_threads()

import torch  # noqa: E402

from unlearn.scoring import answers, generation  # noqa: E402
import unlearn.benchmarks.tofu.benchmark as tofu  # noqa: E402
from unlearn.benchmarks.tofu.benchmark import evaluate_tofu  # noqa: E402
from unlearn.benchmarks.tofu.protocol import protocol_preset, sized_for  # noqa: E402
from unlearn.benchmarks.tofu.data import load_tofu  # noqa: E402
from unlearn.models import load_model  # noqa: E402


@contextlib.contextmanager
def old_evaluator():
    saved = generation.ENGINE, answers.PREFIX_MIN, answers.CHUNK_COST, tofu.LANES
    generation.ENGINE, answers.PREFIX_MIN, answers.CHUNK_COST, tofu.LANES = "hf", 1 << 30, 1 << 30, False
    try:
        yield
    finally:
        generation.ENGINE, answers.PREFIX_MIN, answers.CHUNK_COST, tofu.LANES = saved


def compare(a: dict, b: dict) -> dict:
    """Generated texts equal? Largest per-question difference of every numeric log value."""
    texts_equal, worst = True, 0.0
    for split, log in a["logs"].items():
        for key, rows in log.items():
            for i, v in rows.items():
                w = b["logs"][split][key][i]
                if key == "generated_text":
                    texts_equal &= v == w
                else:
                    worst = max(worst, float(np.max(np.abs(np.asarray(v, float) - np.asarray(w, float)))))
    mia = max(abs(np.asarray(a["per_question"]["mia_forget"][k]) - np.asarray(b["per_question"]["mia_forget"][k])).max()
              for k in a["per_question"]["mia_forget"])
    return {"texts_equal": texts_equal, "max_abs_diff_logs": worst, "max_abs_diff_mia_scores": float(mia)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None, help="TOFU folder (default: the embedded copy)")
    ap.add_argument("--model", default="smollm2-135m", help="preset or folder (e.g. a cached dry-run target)")
    ap.add_argument("--protocol", default="reduced", choices=["reduced", "full"])
    ap.add_argument("--compat", default="tofu", choices=["tofu", "open-unlearning"])
    ap.add_argument("--split", default="forget01")
    ap.add_argument("--rounds", type=int, default=2, help="A/B pairs (median over them)")
    ap.add_argument("--pinned", action="store_true", help="both paths under the tiny tier's AVX2 pins")
    args = ap.parse_args()
    data = load_tofu(args.split, Path(args.data_dir) if args.data_dir else None)
    lm = load_model(args.model)
    base = protocol_preset(args.protocol, args.compat)
    protocol = sized_for(base, "cpu")  # unlearn eval's protocol on a CPU
    # open-unlearning generates in its evaluation batch, the one its conventions score in
    old_protocol = dataclasses.replace(base, generation_batch_size=base.batch_size) if base.open_unlearning else base
    times: dict[str, list[float]] = {"old": [], "new": []}
    results = {}
    for _ in range(args.rounds):
        for name in ("old", "new"):
            ctx = old_evaluator() if name == "old" else contextlib.nullcontext()
            proto = old_protocol if name == "old" else protocol
            with ctx:
                t0 = time.perf_counter()
                results[name] = evaluate_tofu(lm.model, lm.tokenizer, data, proto, progress=False)
                times[name].append(time.perf_counter() - t0)
            print(f"{name}: {times[name][-1]:.1f} s", flush=True)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model_name = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("Model name")), "?")
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"model": args.model, "protocol": protocol.describe(), "cpu": model_name, "pinned": args.pinned,
                      "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
                      "generation_batch_size": {"old": old_protocol.generation_batch_size or old_protocol.batch_size,
                                                "new": protocol.generation_batch_size or protocol.batch_size},
                      "old_s": times["old"], "new_s": times["new"], "median_old_s": round(med["old"], 1),
                      "median_new_s": round(med["new"], 1), "ratio_old_over_new": round(med["old"] / med["new"], 2),
                      **compare(results["old"], results["new"])}, indent=1))


if __name__ == "__main__":
    main()
