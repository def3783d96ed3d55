"""Wall time of the full TOFU grid (11 methods x forget01/05/10, full protocol) for a Qwen3-4B QLoRA model, from
the throughput the GPU tier measured (``.ci/gpu`` writes ``outputs/gpu_report.jsonl``; tests/test_gpu_4b.py).

    python perf/gpu_grid_estimate.py outputs/gpu_report.jsonl [THROUGHPUT.jsonl]

With a second file from ``perf/gpu_throughput.py`` (warm medians), its rates replace the tier's: training at the
target fine-tuning step's warm rate (the warm finetune method's beside it), generation at the fastest exact
configuration (4-bit + LoRA, ``fast`` engine) measured at the full protocol's 200 new tokens that fit the cap,
and each method's unlearning run at its warm median where the file has one (its ``methods`` part).

How (each choice is printed with the result):
- training: target (full, 5 epochs) and one gold per split (retainNN, 5 epochs) at two measured rates of the same
  work (NLL on QA rows, batch 16, gradient checkpointing): the target fine-tuning test's and the finetune
  method's (they differed 5x on the H200; the cause was not found within the device time);
- unlearning: each method's measured run covered one epoch over 64 forget rows (2 optimiser steps of 16 x 2,
  its retain and reference passes included; trou 32, its accumulation is 1), so a cell costs that run's seconds
  x forget rows / 64 x 5 epochs (finetune: retain rows, its epochs are over the retain split; IWAP: x 6
  influence passes instead, 5 rounds as on the tiny tier, since it prunes in rounds, not epochs); retrain cells
  are the golds;
- tokens are counted unpadded (question + answer + 8 template tokens) while the measured rates count padded
  positions, so training and unlearning are undercounted (``gpu_grid_estimate_benchmarks.py`` pads; on TOFU's
  forget rows the padded count is ~1.6x the unpadded);
- evaluation of each of the 33 unlearned models and 3 golds (full protocol: min(300, n) forget, 300 retain, 100
  real-author, 117 world-fact rows; 7 scored texts per forget/retain row, 5 per real-author/world-fact row) at
  the measured scoring rate, plus greedy generation of every evaluated question at the measured generation rate,
  twice: 200 new tokens each (the worst case: the random model never stops) and the mean answer length (a
  trained model stops after its answer); the target is evaluated for its reference figures only (forget +
  retain), once per split.
Token counts use the tier model's tokenizer on the embedded TOFU rows, the same tokenizer the rates were measured
with (tiny-qwen3's BPE splits English into about twice Qwen's tokens, so counts and rates are both in its units).
"""

from __future__ import annotations

import json
import sys
from statistics import mean

SPLITS = {"forget01": 40, "forget05": 200, "forget10": 400}
EPOCHS = 5
MEASURED_ROWS = 64
# IWAP's measured run is one influence pass (the random model meets its stopping target before any pruning); a
# real run makes one pass per round plus a last check: the tiny tier's tuned setting stops after 5 rounds
IWAP_PASSES = 6


def load_complete(report: str) -> dict[str, dict] | None:
    """The tier report's records, or None (saying what is missing) when a step an estimate needs is absent."""
    recs = load(report)
    missing = [k for k in ("target fine-tuning", "method finetune", "scoring batch 16", "generation batch 16")
               if k not in recs]
    if missing:
        print(f"no estimate: {report} lacks {', '.join(missing)} (a partial run, e.g. pytest -k)")
        return None
    return recs


def measured_rows(method: str) -> int:
    """Forget rows a method's measured run covered: 2 optimiser steps of 16 x 2, except trou's, whose own
    accumulation is 1 (2 steps of 16)."""
    return MEASURED_ROWS // 2 if method == "trou" else MEASURED_ROWS


def method_rows(method: str, n_forget: int) -> int:
    """Rows one epoch of a method's cell covers on a split with ``n_forget`` forget rows: finetune's epochs are
    over the retain split (the 4000 rows less the forget rows), every other method's over the forget split."""
    return 4000 - n_forget if method == "finetune" else n_forget


def load(report: str) -> dict[str, dict]:
    recs = {}
    with open(report) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                recs[r["step"]] = r  # the last record of a step wins (reruns append)
    return recs


def training_rates(recs: dict, warm: dict | None = None) -> list[float]:
    """Training rates (tokens/s) the grid is given at: the warm target fine-tuning step's when a throughput file
    is read, else the tier's two measured rates of the same work (the target fine-tuning test's and the finetune
    method's: NLL on QA rows, batch 16, QLoRA), ascending."""
    if warm is not None:
        return [warm["target fine-tuning"]["tokens_per_s"]]
    return sorted({recs["target fine-tuning"]["tokens_per_s"], recs["method finetune"]["tokens_per_s"]})


def unlearning_runs(recs: dict, warm: dict | None = None) -> tuple[dict[str, dict], dict[str, dict]]:
    """(every method's measured run, the warm ones among them): the tier's ``method <name>`` records, each
    replaced by the throughput file's warm one (``gpu_throughput.py OUT methods``: a record with ``seconds``)."""
    methods = {k.split(" ", 1)[1]: r for k, r in recs.items() if k.startswith("method ")}
    warm_methods = {k.split(" ", 1)[1]: r for k, r in (warm or {}).items()
                    if k.startswith("method ") and "seconds" in r}
    methods.update(warm_methods)
    return methods, warm_methods


def main(report: str, throughput: str | None = None) -> None:
    from unlearn.benchmarks.tofu.data import load_tofu
    from unlearn.models.tiny import train_tiny_tokenizer

    recs = load_complete(report)
    if recs is None:
        return
    tok = train_tiny_tokenizer()
    data = load_tofu("forget10")
    full = data.full
    qa_tokens = mean(len(tok(r.question).input_ids) + len(tok(r.answer).input_ids) + 8 for r in full)  # + template
    answer_tokens = mean(len(tok(r.answer).input_ids) for r in full)
    # two measured rates for the same work (NLL on QA rows, batch 16, QLoRA): the target fine-tuning test's and the
    # finetune method's (it trains on retain rows with the same loss); the grid is given at both
    rates = training_rates(recs)
    score_tps = recs["scoring batch 16"]["tokens_per_s"]
    gen_tps = recs["generation batch 16"]["tokens_per_s"]
    gen_desc = "batch 16"
    warm = None
    if throughput:
        warm = load(throughput)
        rates = training_rates(recs, warm)
        print(f"warm training rates ({throughput}): target fine-tuning {rates[0]:.0f} tok/s, finetune method "
              f"{warm['method finetune']['tokens_per_s']:.0f} tok/s (the grid uses the first)")
        long = [r for k, r in warm.items() if k.startswith("generation 4bit+lora fast") and r.get("new_tokens") == 200
                and "tokens_per_s" in r]
        if long:
            best = max(long, key=lambda r: r["tokens_per_s"])
            gen_tps, gen_desc = best["tokens_per_s"], f"batch {best['batch_size']} at 200 new tokens, warm"
    # the warm per-method runs (``gpu_throughput.py OUT methods``) replace the tier's cold ones
    methods, warm_methods = unlearning_runs(recs, warm)
    if warm_methods:
        print("warm unlearning runs (s, cold in brackets): " + ", ".join(
            f"{m} {r['seconds']:.2f} ({r['cold_s']:.2f})" for m, r in sorted(warm_methods.items())))

    grid = {}
    for train_tps in rates:
        grid[train_tps] = _grid(recs, methods, full, qa_tokens, answer_tokens, train_tps, score_tps, gen_tps)
    dev = next(iter(recs.values()))["device"]
    print(f"# Full TOFU grid estimate, {recs['target fine-tuning']['model']} (4-bit + LoRA) on {dev}")
    train_desc = "target fine-tuning, warm" if throughput else "target fine-tuning test, finetune method"
    print(f"rates: training {' or '.join(f'{r:.0f}' for r in rates)} tok/s ({train_desc}; batch 16), scoring "
          f"{score_tps:.0f} tok/s (batch 16), generation {gen_tps:.0f} new tok/s ({gen_desc}); "
          f"mean QA {qa_tokens:.0f} tokens, answer {answer_tokens:.0f}")
    for train_tps, (rows, total, train_s, eval_s) in grid.items():
        print(f"## at {train_tps:.0f} training tok/s")
        print(f"target fine-tuning (4000 rows x {EPOCHS} epochs): {train_s(len(full)) / 60:.1f} min")
        for split, part in rows:
            unl = sum(v for k, v in part.items() if k not in ("gold", "target eval (reference)"))
            print(f"{split}: gold {part['gold'] / 60:.1f} min, unlearning (10 methods) {unl / 60:.1f} min, "
                  f"one model's evaluation {eval_s(SPLITS[split], answer_tokens) / 60:.1f} min "
                  f"({eval_s(SPLITS[split], 200) / 60:.1f} at 200 new tokens)")
        print(f"whole grid: {total['typical'] / 3600:.1f} h (generation stops after the answer), "
              f"{total['worst'] / 3600:.1f} h (every generation 200 tokens)")
    peaks = sorted(((r["peak_gib"] or 0, k) for k, r in recs.items()), reverse=True)
    print(f"highest peak: {peaks[0][0]:.2f} GiB ({peaks[0][1]}), cap {next(iter(recs.values()))['cap_gib']} GiB")


def _grid(recs, methods, full, qa_tokens, answer_tokens, train_tps, score_tps, gen_tps):
    def train_s(rows: int) -> float:
        return EPOCHS * rows * qa_tokens / train_tps

    def eval_s(n_forget: int, new_tokens: float, reference_only: bool = False) -> float:
        f = min(300, n_forget)
        scored = (f * 7 + 300 * 7) if reference_only else (f * 7 + 300 * 7 + 100 * 5 + 117 * 5)
        questions = (f + 300) if reference_only else (f + 300 + 100 + 117)
        return scored * qa_tokens / score_tps + questions * new_tokens / gen_tps

    rows = []
    total = {"worst": train_s(len(full)), "typical": train_s(len(full))}
    for split, n in SPLITS.items():
        gold = train_s(4000 - n)  # retainNN: the 4000 rows less the split's n forget rows
        part = {"gold": gold, "target eval (reference)": eval_s(n, answer_tokens, reference_only=True)}
        for m, r in sorted(methods.items()):
            part[m] = r["seconds"] * method_rows(m, n) / measured_rows(m) * (IWAP_PASSES if m == "iwap" else EPOCHS)
        for case, new in (("worst", 200), ("typical", answer_tokens)):
            total[case] += sum(part.values()) + 11 * eval_s(n, new)  # 10 unlearned models + the gold
        rows.append((split, part))
    return rows, total, train_s, eval_s


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
