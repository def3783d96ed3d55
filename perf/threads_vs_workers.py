"""Two pytest-xdist workers with one torch thread each, or one process with two threads, on a 2-core CPU?

Runs the same tiny-tier workload (training tiny-qwen3 on 320 synthetic TOFU rows for 2 epochs, then scoring
them) as: one process with 2 threads, then two 1-thread processes at once; ``--rounds`` times each, under the
numerics pins. Prints the median wall times, the throughput ratio (work per second of the two workers over the
one process) and whether every run produced the same weights and scores (hashes).

    python perf/threads_vs_workers.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = """
import hashlib, json, sys, time
from unlearn.numerics import pin_numerics
pin_numerics()
import torch
torch.set_num_threads(int(sys.argv[1]))
from unlearn.benchmarks.tofu.data import synthetic_tofu
from unlearn.models import load_model
from unlearn.scoring import encode_qa, score_examples
from unlearn.train import TrainConfig, nll_loss, train
lm = load_model("tiny-qwen3")
rows = synthetic_tofu("forget10", n_authors=40, seed=0).full[:320]
ex = [encode_qa(lm.tokenizer, r.question, r.answer) for r in rows]
t0 = time.time()
train(lm.model, lm.tokenizer.pad_token_id, TrainConfig(lr=3e-3, epochs=2, batch_size=16, warmup_steps=10,
      weight_decay=0.01, progress=False), retain=ex, loss_fn=nll_loss)
res = score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=16)
blob = b"".join(p.detach().numpy().tobytes() for p in lm.model.parameters())
print(json.dumps({"threads": torch.get_num_threads(), "work_s": time.time() - t0,
                  "weights": hashlib.sha256(blob).hexdigest()[:16],
                  "scores": hashlib.sha256(res.mean_nll.tobytes()).hexdigest()[:16]}))
"""


def launch(threads: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_XDIST_WORKER_COUNT": str(2 // threads)}
    return subprocess.Popen([sys.executable, "-c", WORK, str(threads)], env=env, stdout=subprocess.PIPE, text=True)


def result(proc: subprocess.Popen) -> dict:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"worker failed (exit {proc.returncode})")
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    one, two, hashes = [], [], set()
    for _ in range(args.rounds):
        t0 = time.time()
        r = result(launch(2))
        one.append(time.time() - t0)
        hashes.add((r["weights"], r["scores"]))
        t0 = time.time()
        procs = [launch(1), launch(1)]
        rs = [result(p) for p in procs]
        two.append(time.time() - t0)
        hashes.update((x["weights"], x["scores"]) for x in rs)
    a, b = statistics.median(one), statistics.median(two)
    print(json.dumps({"one_process_2_threads_s": round(a, 2), "two_workers_1_thread_s": round(b, 2),
                      "throughput_ratio": round(2 * a / b, 3), "identical_outputs": len(hashes) == 1,
                      "hashes": sorted(hashes)}))


if __name__ == "__main__":
    main()
