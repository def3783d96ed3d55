"""Wall time of the full MUSE and WMDP grids (every method, every split, full protocol) for a Qwen3-4B QLoRA model
on one GPU, from the throughput the GPU tier measured (``.ci/gpu`` writes ``outputs/gpu_report.jsonl``;
tests/test_gpu_4b.py), built as ``perf/gpu_grid_estimate.py`` builds TOFU's: measured rates x the tokens of the work.

    UNLEARN_DATA_DIR=DATA python perf/gpu_grid_estimate_benchmarks.py outputs/gpu_report.jsonl [THROUGHPUT.jsonl]

The work is read from the project, not restated: the full tier's profiles (``muse_profile`` / ``wmdp_profile`` of
``unlearn/tiers.py``'s FULL recipes: epochs, batch sizes, accumulation, text lengths, evaluation protocol), the data
as the benchmarks assemble it (``MuseBenchmark.data``/``requests``, ``WmdpBenchmark.data``/``_training_texts``, on
the folder in ``$UNLEARN_DATA_DIR``; without one it says so and stops), the methods' settings (``method_settings``)
and the benchmarks' own encoders (``encode_text``, ``encode_answered``, ``verbmem_prompts``, ``knowmem_prompts``,
lm-eval's ``encode_pairs``). Tokens are the tier model's tokenizer's (``train_tiny_tokenizer``), the one the
rates were measured with. With a second file from ``perf/gpu_throughput.py`` its warm rates replace the tier's as
in the TOFU estimate (``training_rates``, ``unlearning_runs``): training at the warm target fine-tuning rate, each
method's run at its warm median where the file has one, generation at the warm ``fast`` 4-bit + LoRA rate of the
protocol's generation batch.

How (each choice is printed with the result):
- tokens are counted as the GPU computes them: padded to the longest row of each batch (``collate``; length-
  sorted batches for scoring and generation, ``length_sorted_batches``; the expected longest of a random batch for
  training and unlearning, whose batches are shuffles), because the measured tokens/s count padded positions
  (``TokenCounter`` counts the embedding's inputs). (``gpu_grid_estimate.py`` counts TOFU's rows unpadded.)
- training (target and golds: NLL on every token of each text, ``finetuned_model_dir``) at the training rate;
- unlearning: each method's measured seconds per token it forwarded (its record: 64 TOFU forget rows, 64 retain
  rows, 2 optimiser steps of 16 x 2 per phase) x the tokens its full run forwards, from a pass model read off
  ``unlearn/methods``: per micro-batch, forget-side and retain-side passes of grad_ascent 1/0, grad_diff, simnpo
  and idk 1/1 (idk's forget side is (question, refusal) rows), npo 2/1 (pi_ref's pass), rmu 2/2 (frozen and
  updated hidden states); trou steps every micro-batch (its own accumulation 1) with 3 forget passes (pi_ref, the
  policy, the radius-growth check, counted on every step) + 1 retain + its 8-row retain probe; dsu's forget phase
  runs ``forget_epochs`` (5) whatever the schedule, then as many steps on retain; finetune runs its own 5 epochs
  over the retain set; iwap makes one pass over every forget batch and as many retain batches per round, 6
  passes (5 rounds and a last check, the TOFU estimate's assumption: the measured run made one). The model is
  checked against the tokens the tier counted in its measured runs (printed);
- the dynamics probe of the runs that carry one (MUSE: the first request's runs; WMDP: every run) at the scoring
  rate, one point per epoch (iwap: per round; dsu: per epoch of its repair loop) plus the start;
- evaluation at the scoring rate (prompts of generation included: the prefill is a scoring pass) plus new tokens
  at the generation rate. MUSE (``evaluate_muse``, full protocol): VerbMem 100 prompts x 128 new tokens, KnowMem
  100 forget + 100 retain few-shot prompts x 32 (their early stop is not counted: at most 6,400 tokens a model),
  PrivLeak's 100 + 100 texts scored whole with Min-K%++ statistics. WMDP (``evaluate_wmdp``, memorised protocol,
  ``mmlu_per_subject=None``): A and B of the split and all 14,042 MMLU questions (one forward of the prompt per
  question where the four letters are single tokens, else four), 32 retain texts and A/B's answered texts cut to
  256 tokens;
- MUSE's grid (news, news-scal, news-sust; ``MuseBenchmark.run_cell``): per method the news run (news-scal's
  first step shares it: same object, same forget set), news-scal steps 2-4 and news-sust steps 1-4 (a 4B model is
  not kept in memory, so news-sust redoes its first step), each evaluated; target + gold_1..4 (``step_golds``)
  trained and evaluated once (retrain cells reuse the golds'). news-sust cannot run under 4-bit: from its second
  step ``MuseBenchmark._reload`` raises (a 4-bit base cannot be merged into), so the grid is given without it and
  with it (as if it ran at these rates, e.g. without ``--quant``);
- WMDP's grid (every split: synthetic, bio, chem, cyber; ``WmdpBenchmark.run_cell``): one target (A of the three
  subjects + the retain paragraphs) and one gold (retain only) shared by bio/chem/cyber, one of each for the
  synthetic domain; each split's target and gold evaluated on it (the cache key holds the split), each method
  run and evaluated once per split.
Not counted: model loads (the tier's load of the 4-bit model took 1.8-7.6 s), cache writes, bootstrap intervals,
reports. Not determined from the code, assumed: a token costs the same at any sequence length (rates were
measured on ~100-200-token TOFU rows; at MUSE's 2048 attention adds under a tenth to Qwen3-4B's FLOPs per token,
while longer rows fill the GPU better); decoding after VerbMem's ~1,900-token prompts costs what it cost after
TOFU's short questions; the generation rate at batch 16 is the warm one measured at 32 new tokens (at batch 64 the
rate fell by a fifth from 32 to 200 tokens); scoring at batch 8 (MUSE's) runs at batch 16's measured rate;
WMDP's MCQ pass (logits at the last position only) costs a scoring pass. The WMDP ``standard`` protocol (forget
corpora not in the data folder, no gold) and MUSE-Books (not in the folder) are not estimated. The folder lacks
MUSE's raw retain and holdout files: what is counted is the benchmark's stand-in (privleak/retain2, 100 texts, as
retain); with the raw retain corpus the target, the golds and every retain pass would hold more text. The tokenizer
is tiny-qwen3's, which splits English into about twice Qwen's tokens (2.1 characters a token on the News
chunks): the figures are the tier model's, as in the TOFU estimate; Qwen3-4B's own tokenizer would give fewer
tokens and cut fewer texts at MUSE's 2048.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gpu_grid_estimate import IWAP_PASSES, MEASURED_ROWS, load, load_complete, training_rates, unlearning_runs  # noqa: E402

# forget-side and retain-side passes of one micro-batch of a training-loop method (unlearn/methods/*.py)
PASSES = {"grad_ascent": (1, 0), "grad_diff": (1, 1), "simnpo": (1, 1), "idk": (1, 1), "npo": (2, 1), "rmu": (2, 2)}
TROU_FORGET_PASSES = 3  # pi_ref's NPO pass, the policy's, and the radius-growth check's (counted on every step)


class Lengths:
    """Token counts of a set of examples, and the padded tokens of batches of them (``collate`` pads to the
    longest row of a batch)."""

    def __init__(self, lengths: list[int]):
        self.order, self.sorted, self.n = list(lengths), sorted(lengths), len(lengths)
        self._max: dict[int, float] = {}

    def expected_max(self, k: int) -> float:
        """The expected longest of k rows drawn without replacement (a shuffled batch, ``rng.sample``)."""
        k = min(k, self.n)
        if k not in self._max:
            total = math.comb(self.n, k)
            self._max[k] = sum(v * math.comb(i, k - 1) for i, v in enumerate(self.sorted) if i >= k - 1) / total
        return self._max[k]

    def random_batch(self, k: int) -> float:
        return min(k, self.n) * self.expected_max(k)

    def sorted_batches(self, bs: int) -> int:
        """Length-sorted batches (``length_sorted_batches``: scoring, generation prompts)."""
        desc = self.sorted[::-1]
        return sum(len(desc[i:i + bs]) * desc[i] for i in range(0, self.n, bs))

    def in_order_batches(self, bs: int, rows: int | None = None) -> int:
        """Consecutive batches of the first ``rows`` rows (IWAP's influence batches, TROU's probe)."""
        rows = self.order[:rows]
        return sum(len(rows[i:i + bs]) * max(rows[i:i + bs]) for i in range(0, len(rows), bs))


def loop(n: int, bs: int, accum: int, epochs: float, max_steps: int | None = None) -> tuple[list[int], int]:
    """Rows of each micro-batch of ``unlearn.train.train`` over ``n`` primary rows, and its optimiser steps."""
    per_epoch = math.ceil(n / bs)
    micro = math.ceil(per_epoch * epochs)
    steps = math.ceil(micro / accum)
    if max_steps is not None:
        steps = min(steps, max_steps)
        micro = min(micro, steps * accum)
    return [min(bs, n - (m % per_epoch) * bs) for m in range(micro)], steps


def run_tokens(method: str, cfg, sched, forget: Lengths, retain: Lengths, idk: Lengths | None,
               iwap_passes: int) -> float:
    """Padded tokens one unlearning run forwards (the module docstring's pass model; ``idk``: idk's forget rows)."""
    bs, accum = sched.batch_size, sched.grad_accum
    paired = retain.random_batch(bs)  # each forget batch meets rng.sample(retain, batch size)
    if method == "finetune":
        sizes, _ = loop(retain.n, bs, accum, cfg.epochs, sched.max_steps)
        return sum(retain.random_batch(s) for s in sizes)
    if method == "dsu":
        sizes, steps = loop(forget.n, bs, accum, cfg.forget_epochs, sched.max_steps)
        repair, _ = loop(retain.n, bs, accum, 1e9, steps)
        return sum(forget.random_batch(s) for s in sizes) + sum(retain.random_batch(s) for s in repair)
    if method == "iwap":
        return iwap_passes * (forget.in_order_batches(bs) + retain.in_order_batches(bs, math.ceil(forget.n / bs) * bs))
    if method == "trou":
        sizes, _ = loop(forget.n, bs, 1, sched.epochs, sched.max_steps)
        probe = retain.in_order_batches(cfg.probe_size, cfg.probe_size)
        return probe + sum(TROU_FORGET_PASSES * forget.random_batch(s) + paired + probe for s in sizes)
    f, r = PASSES.get(method, (1, 1))
    side = idk if method == "idk" else forget
    sizes, _ = loop(side.n, bs, accum, sched.epochs, sched.max_steps)
    return sum(f * side.random_batch(s) + r * paired for s in sizes)


def probe_points(method: str, cfg, sched, n_forget: int, n_retain: int, iwap_passes: int) -> int:
    """Dynamics points of a run: the start, then one per epoch of the loop that carries the probe, and the last."""
    bs, accum = sched.batch_size, sched.grad_accum
    if method == "iwap":
        return iwap_passes
    if method == "finetune":
        n, (_, steps) = n_retain, loop(n_retain, bs, accum, cfg.epochs)
    elif method == "dsu":
        n, steps = n_retain, loop(n_forget, bs, accum, cfg.forget_epochs)[1]
    else:
        accum = 1 if method == "trou" else accum
        n, (_, steps) = n_forget, loop(n_forget, bs, accum, sched.epochs)
    return 1 + math.ceil(steps / max(1, math.ceil(math.ceil(n / bs) / accum)))


class Counter:
    """The benchmarks' own encoders over one tokenizer, memoised (the same texts recur across runs)."""

    def __init__(self, tok):
        self.tok, self._text, self._mcq = tok, {}, {}

    def text(self, texts: list[str], max_length: int | None, eos: bool = True) -> Lengths:
        """``encode_text``'s lengths: the text's tokens cut to ``max_length`` (None: all), EOS last when ``eos``."""
        from unlearn.scoring import encode_text

        out = []
        for t in texts:
            if (t, max_length, eos) not in self._text:
                self._text[t, max_length, eos] = len(encode_text(self.tok, t, max_length, eos=eos))
            out.append(self._text[t, max_length, eos])
        return Lengths(out)

    def mcq(self, questions, bs: int) -> int:
        """Tokens ``score_mcq`` forwards: length-sorted batches of the prompts whose four letters are single
        tokens after them (lm-eval's ``encode_pairs``), four forwards of prompt + letter for the others."""
        from unlearn.benchmarks.wmdp.data import mcq_prompt
        from unlearn.benchmarks.wmdp.metrics import encode_pairs

        fast, slow = [], 0
        for q in questions:
            if q.key not in self._mcq:
                ctx, conts, prefix = encode_pairs(self.tok, mcq_prompt(q))
                one = prefix and all(len(c) == 1 for c in conts)
                self._mcq[q.key] = (len(ctx), None if one else sum(len(ctx) + len(c) for c in conts))
            n, four = self._mcq[q.key]
            if four is None:
                fast.append(n)
            else:
                slow += four
        return (Lengths(fast).sorted_batches(bs) if fast else 0) + slow

    def mcq_counts(self) -> tuple[int, int]:
        """(questions seen, those that need four forwards)."""
        return len(self._mcq), sum(four is not None for _, four in self._mcq.values())


def generation_rate(recs: dict, warm: dict | None, bs: int) -> tuple[float, str]:
    """New tokens/s at generation batch ``bs``: the warm ``fast`` 4-bit + LoRA record of that batch (the longest
    generation measured), else the tier's record of that batch (cold, 200 new tokens), else its batch 16."""
    cands = [r for k, r in (warm or {}).items()
             if k.startswith("generation 4bit+lora fast") and r.get("batch_size") == bs and "tokens_per_s" in r]
    if cands:
        r = max(cands, key=lambda r: r["new_tokens"])
        return r["tokens_per_s"], f"batch {bs} at {r['new_tokens']} new tokens, warm"
    r = recs.get(f"generation batch {bs}") or recs["generation batch 16"]
    return r["tokens_per_s"], f"batch {r['rows']} at {r['max_new_tokens']} new tokens, tier (cold)"


def scoring_rate(recs: dict, bs: int) -> tuple[float, str]:
    """Scored tokens/s at batch ``bs``: the tier's record of that batch, else its batch 16 (the throughput file
    has no scoring records)."""
    step = f"scoring batch {bs}" if f"scoring batch {bs}" in recs else "scoring batch 16"
    return recs[step]["tokens_per_s"], step.removeprefix("scoring ") + ", tier"


def data_folders() -> tuple[bool, bool, str]:
    """(a MUSE-News folder is found, WMDP + MMLU + WikiText are found, where they were looked for)."""
    from unlearn.benchmarks.muse.data import find_muse_source
    from unlearn.benchmarks.wmdp.data import find_data_root

    if not os.environ.get("UNLEARN_DATA_DIR"):
        return False, False, "UNLEARN_DATA_DIR is not set"
    if not Path(os.environ["UNLEARN_DATA_DIR"]).expanduser().is_dir():
        return False, False, f"UNLEARN_DATA_DIR={os.environ['UNLEARN_DATA_DIR']} is not a folder"
    muse = find_muse_source(None, "news")[0] is not None
    wmdp = all(find_data_root(None, p)[0] is not None for p in
               ["wmdp/bio_questions.json", "wmdp/chem_questions.json", "wmdp/cyber_questions.json", "mmlu/test",
                "wikitext/wiki.test.raw"])
    return muse, wmdp, f"UNLEARN_DATA_DIR={os.environ['UNLEARN_DATA_DIR']}"


class Measured:
    """The measured per-method runs: seconds per token each forwarded, and the pass model's check against the
    tokens the tier counted (its runs: tests/test_gpu_4b.py, on TOFU forget10's first 64 forget and retain rows)."""

    def __init__(self, recs: dict, warm: dict | None, counter: Counter, model: str):
        from unlearn.benchmarks.base import method_settings
        from unlearn.benchmarks.tofu.benchmark import profile_for
        from unlearn.benchmarks.tofu.data import load_tofu
        from unlearn.methods.idk import idk_examples
        from unlearn.scoring import encode_qa

        self.runs, self.warm = unlearning_runs(recs, warm)
        tok = counter.tok
        rows = load_tofu("forget10")
        forget, retain = rows.forget[:MEASURED_ROWS], rows.retain_train[:MEASURED_ROWS]
        f = Lengths([len(encode_qa(tok, r.question, r.answer)) for r in forget])
        r = Lengths([len(encode_qa(tok, r.question, r.answer)) for r in retain])
        self.checks = {}
        for m, rec in sorted(self.runs.items()):
            profile = profile_for(model, dry_run=False, max_steps=rec.get("max_steps", 2), precision="bf16",
                                  protocol="full")
            cfg, over = method_settings(m, profile.method_overrides, None)
            sched = dataclasses.replace(profile.unlearn, **over)
            refusals = rows.idk or ["I don't know."]
            i = Lengths([len(e) for e in idk_examples(tok, [q.question for q in forget], refusals, sched.seed)])
            self.checks[m] = run_tokens(m, cfg, sched, f, r, i, iwap_passes=1) / rec["tokens"]

    def seconds(self, method: str, tokens: float) -> float:
        rec = self.runs[method]
        return rec["seconds"] / rec["tokens"] * tokens

    def describe(self) -> str:
        unknown = [m for m in self.runs if m not in PASSES and m not in ("finetune", "dsu", "iwap", "trou")]
        return ("pass model / tokens the tier counted in its measured runs: "
                + ", ".join(f"{m} {v:.2f}" for m, v in self.checks.items())
                + (f" (no pass model for {', '.join(unknown)}: taken as 1 forget + 1 retain pass)" if unknown else ""))


def minutes(s: float) -> str:
    return f"{s / 60:.1f}"


def mean_of(lengths: Lengths) -> str:
    return f"{sum(lengths.order) / lengths.n:.0f}"


def largest(parts: dict[str, float], total: float, of: str) -> None:
    top = sorted(parts.items(), key=lambda kv: -kv[1])[:4]
    print(f"largest parts of {of}: " + ", ".join(f"{k} {v / 3600:.1f} h ({v / total:.0%})" for k, v in top))


def training_s(lengths: Lengths, cfg, tps: float) -> float:
    """A target or gold fine-tuning (``finetuned_model_dir``: NLL on every token, shuffled batches)."""
    sizes, _ = loop(lengths.n, cfg.batch_size, cfg.grad_accum, cfg.epochs)
    return sum(lengths.random_batch(s) for s in sizes) / tps


# ------------------------------------------------------------------------------------------------ MUSE
def muse(recs: dict, warm: dict | None, measured: Measured, counter: Counter, model: str) -> None:
    from unlearn.benchmarks.base import method_settings
    from unlearn.benchmarks.muse.benchmark import MuseBenchmark, knowmem_prompts, verbmem_prompts
    from unlearn.benchmarks.muse.data import headlines
    from unlearn.benchmarks.tofu.data import load_idk
    from unlearn.methods.idk import idk_examples

    bench = MuseBenchmark(model, quant="4bit", device="cpu", precision="bf16", progress=False)
    p, tok = bench.profile, counter.tok
    d, reqs = bench.data("news"), bench.requests()
    proto, n, n_req = p.protocol, p.text_length, len(reqs)

    def text(texts):  # training and unlearning texts: encode_text, cut to the profile's text length
        return counter.text(texts, n)

    retain = text(d.retain)
    golds = {f"gold_{k}": d.retain + [t for s in reqs[k:] for t in s]
             for k in (range(1, n_req + 1) if p.step_golds else [1])}

    # one model's evaluation: generation prompts (a scoring pass each) + new tokens, and PrivLeak's scores
    score_tps, score_desc = scoring_rate(recs, proto.batch_size)
    gbs = proto.generation_batch_size
    gen_tps, gen_desc = generation_rate(recs, warm, gbs)
    verb = Lengths([len(x) for x in verbmem_prompts(tok, d.verbmem, proto)])
    know = Lengths([len(x) for x in knowmem_prompts(tok, [(d.knowmem_forget, d.knowmem_forget_icl),
                                                           (d.knowmem_retain, d.knowmem_retain_icl)])])
    priv = [counter.text(t, proto.privleak_tokens, eos=False) for t in (d.privleak_forget, d.privleak_holdout)]
    parts = {"VerbMem": verb.sorted_batches(gbs) / score_tps + verb.n * proto.verbmem_new_tokens / gen_tps,
             "KnowMem": know.sorted_batches(gbs) / score_tps + know.n * proto.knowmem_new_tokens / gen_tps,
             "PrivLeak": sum(x.sorted_batches(proto.batch_size) for x in priv) / score_tps}
    eval_s = sum(parts.values())
    f_rows, r_rows = p.dynamics_rows
    probe_s = ((text(d.forget[:f_rows]).sorted_batches(proto.batch_size)
                + text(d.retain[:r_rows]).sorted_batches(proto.batch_size)) / score_tps if f_rows and r_rows else 0.0)

    # a method's unlearning runs (run_cell): (split, forget texts, carries the dynamics probe)
    runs = ([("news", reqs[0], True)] + [("news-scal", d.scal[k], False) for k in range(1, n_req)]
            + [("news-sust", reqs[k], k == 0) for k in range(n_req)])
    evaluated = {"news": 1, "news-scal": n_req - 1, "news-sust": n_req}
    idk_answers = load_idk(None)
    unl = {}  # method -> split -> seconds
    for m in sorted(measured.runs):
        cfg, over = method_settings(m, p.method_overrides, None)
        sched = dataclasses.replace(p.unlearn, **over)
        unl[m] = dict.fromkeys(evaluated, 0.0)
        for split, texts, probe in runs:
            forget = text(texts)
            idk = (Lengths([len(e) for e in idk_examples(tok, headlines(texts), idk_answers, sched.seed)])
                   if m == "idk" else None)
            unl[m][split] += measured.seconds(m, run_tokens(m, cfg, sched, forget, retain, idk, IWAP_PASSES))
            if probe:
                unl[m][split] += probe_points(m, cfg, sched, forget.n, retain.n, IWAP_PASSES) * probe_s

    first = text(reqs[0])
    print(f"# Full MUSE grid estimate, {model} (4-bit + LoRA) on {recs['target fine-tuning']['device']}")
    print(f"data: {d.source}: {n_req} requests of {', '.join(str(len(s)) for s in reqs)} chunks, news-scal's sets "
          f"{', '.join(str(len(s)) for s in d.scal)}, retain {len(d.retain)} texts"
          + (f" (absent: {', '.join(d.missing)}; retain is privleak/retain2, scal the unions of sust)"
             if d.missing else ""))
    print(f"recipe (full tier): target and golds {p.target.epochs} epochs, batch {p.target.batch_size} x "
          f"{p.target.grad_accum}, texts cut to {n} tokens; unlearning {p.unlearn.epochs:g} epochs, batch "
          f"{p.unlearn.batch_size} x {p.unlearn.grad_accum}; {proto.describe()}; generation batch {gbs}")
    print(f"tokens: request 1's chunks {mean_of(first)} a text after the cut ({sum(v >= n for v in first.order)} of "
          f"{first.n} at {n}), {first.expected_max(p.unlearn.batch_size):.0f} padded in batches of "
          f"{p.unlearn.batch_size}; retain {mean_of(retain)}; VerbMem prompts {mean_of(verb)}, KnowMem prompts "
          f"{mean_of(know)}, PrivLeak texts {mean_of(priv[0])} (scored whole)")
    print(f"rates: scoring {score_tps:.0f} tok/s ({score_desc}; MUSE scores at batch {proto.batch_size}), "
          f"generation {gen_tps:.0f} new tok/s ({gen_desc})")
    print(f"one model's evaluation: {minutes(eval_s)} min (" + ", ".join(f"{k} {minutes(v)}" for k, v in parts.items())
          + f"); every VerbMem row generates {proto.verbmem_new_tokens} tokens, every KnowMem row "
          f"{proto.knowmem_new_tokens} (its early stop not counted)")
    references = 1 + len(golds)
    for train_tps in training_rates(recs, warm):
        target = training_s(text([t for s in reqs for t in s] + d.retain), p.target, train_tps)
        gold = {g: training_s(text(t), p.target, train_tps) for g, t in golds.items()}
        trained = target + sum(gold.values())
        print(f"## at {train_tps:.0f} training tok/s")
        print(f"target fine-tuning ({sum(map(len, reqs)) + len(d.retain)} texts x {p.target.epochs} epochs): "
              f"{minutes(target)} min; golds: "
              + ", ".join(f"{g} ({len(golds[g])} texts) {minutes(s)} min" for g, s in gold.items()))
        print(f"unlearning, min: the news run (news-scal's first step shares it) / news-scal's {n_req - 1} later "
              f"steps / news-sust's {n_req} steps (it redoes the first: a 4B model is not kept in memory)")
        for m, per in unl.items():
            print(f"  {m}: " + " / ".join(minutes(per[s]) for s in evaluated))
        print(f"evaluations: {references} reference models (target, {', '.join(golds)}) + {len(unl)} methods x "
              f"{sum(evaluated.values())} (" + ", ".join(f"{s} {k}" for s, k in evaluated.items())
              + "); retrain cells reuse the golds'")
        kept = ("news", "news-scal")
        unlearning = sum(per[s] for per in unl.values() for s in kept)
        evaluation = (references + len(unl) * sum(evaluated[s] for s in kept)) * eval_s
        total = trained + unlearning + evaluation
        sust = sum(per["news-sust"] for per in unl.values()) + len(unl) * evaluated["news-sust"] * eval_s
        print(f"whole grid: {total / 3600:.1f} h for news + news-scal (target and golds {trained / 3600:.1f} h, "
              f"unlearning {unlearning / 3600:.1f} h, evaluation {evaluation / 3600:.1f} h); "
              f"{(total + sust) / 3600:.1f} h with news-sust, which does not run under 4-bit (from its second step "
              "MuseBenchmark._reload merges into the base and raises)")
        largest({**{f"{m} unlearning": sum(per[s] for s in kept) for m, per in unl.items()},
                 "target and golds": trained, "evaluation": evaluation}, total, "news + news-scal")


# ------------------------------------------------------------------------------------------------ WMDP
def wmdp(recs: dict, warm: dict | None, measured: Measured, counter: Counter, model: str) -> None:
    from unlearn.benchmarks.base import method_settings
    from unlearn.benchmarks.tofu.data import load_idk
    from unlearn.benchmarks.wmdp.benchmark import WmdpBenchmark, encode_answered
    from unlearn.benchmarks.wmdp.data import mcq_prompt, render_answered
    from unlearn.methods.idk import idk_examples

    bench = WmdpBenchmark(model, quant="4bit", device="cpu", precision="bf16", progress=False)
    p, tok = bench.profile, counter.tok
    proto, n, bs = p.protocol, p.text_length, p.protocol.batch_size
    score_tps, score_desc = scoring_rate(recs, bs)
    idk_answers = load_idk(None)

    def rows(questions, texts):  # split_examples: the questions answer-only, then the other texts as plain text
        return Lengths([len(encode_answered(tok, q, n)) for q in questions]
                       + counter.text(texts[len(questions):], n).order)

    def scored(texts):  # MIA and retain NLL texts: cut to the protocol's text tokens, no EOS, length-sorted batches
        return counter.text(texts, proto.text_tokens, eos=False).sorted_batches(bs)

    evals, unl, trainings = {}, {}, {}
    for split in bench.splits:
        d = bench.data(split)
        mia = scored([render_answered(q) for q in d.forget]) + scored([render_answered(q) for q in d.holdout]) \
            if d.holdout else 0
        evals[split] = {"hazard A+B": (counter.mcq(d.forget, bs) + counter.mcq(d.holdout, bs)) / score_tps,
                        "utility (MMLU)": counter.mcq(d.utility, bs) / score_tps,
                        "retain NLL + MIA": (scored(d.retain_texts[:proto.retain_nll_texts]) + mia) / score_tps}
        k = p.dynamics_rows  # score_mcq at its default batch
        probe_s = (counter.mcq(d.forget[:k], 16) + counter.mcq(d.utility[:k], 16)) / score_tps if k else 0.0
        forget, retain = rows(d.forget, d.forget_texts), rows(d.retain_questions, d.retain_texts)
        questions = ([mcq_prompt(q) for q in d.forget]
                     + [t.strip().splitlines()[0][:200] for t in d.forget_texts[len(d.forget):]])
        unl[split] = {}
        for m in sorted(measured.runs):
            cfg, over = method_settings(m, p.method_overrides, None)
            sched = dataclasses.replace(p.unlearn, **over)
            idk = (Lengths([len(e) for e in idk_examples(tok, questions, idk_answers, sched.seed)])
                   if m == "idk" else None)
            unl[split][m] = (measured.seconds(m, run_tokens(m, cfg, sched, forget, retain, idk, IWAP_PASSES))
                             + probe_points(m, cfg, sched, forget.n, retain.n, IWAP_PASSES) * probe_s)
        target_texts, gold_texts = bench._training_texts(split)
        trainings.setdefault(("target", tuple(target_texts)), []).append(split)
        trainings.setdefault(("gold", tuple(gold_texts)), []).append(split)

    print(f"# Full WMDP grid estimate, {model} (4-bit + LoRA) on {recs['target fine-tuning']['device']}")
    print(f"data: {bench._shared_real()['source']}; synthetic split: {bench.data('synthetic').source}")
    print(f"recipe (full tier): target and gold {p.target.epochs} epochs, batch {p.target.batch_size} x "
          f"{p.target.grad_accum}, texts cut to {n} tokens; unlearning {p.unlearn.epochs:g} epoch, batch "
          f"{p.unlearn.batch_size} x {p.unlearn.grad_accum}; {proto.describe()}")
    print("questions (A, B, utility) per split: " + ", ".join(
        f"{s} {len(bench.data(s).forget)}/{len(bench.data(s).holdout)}/{len(bench.data(s).utility)}"
        for s in bench.splits) + f"; retain {len(bench.data('bio').retain_texts)} WikiText paragraphs")
    seen, four = counter.mcq_counts()
    print(f"rates: scoring {score_tps:.0f} tok/s ({score_desc}), also for the MCQ passes (last-position logits "
          f"only); {four} of {seen} questions need four forwards (a letter not one token)")
    for split, parts in evals.items():
        print(f"{split}: one model's evaluation {minutes(sum(parts.values()))} min ("
              + ", ".join(f"{k} {minutes(v)}" for k, v in parts.items()) + "); unlearning, min: "
              + ", ".join(f"{m} {minutes(s)}" for m, s in unl[split].items()))
    models = {s: 2 + len(unl[s]) for s in evals}  # the target, the gold, the methods (retrain reuses the gold's)
    evaluation = sum(models[s] * sum(evals[s].values()) for s in evals)
    mmlu = sum(models[s] * evals[s]["utility (MMLU)"] for s in evals)
    unlearning = sum(sum(per.values()) for per in unl.values())
    for train_tps in training_rates(recs, warm):
        train = {f"{kind} ({'/'.join(splits)}, {len(texts)} texts)": training_s(counter.text(list(texts), n),
                                                                                 p.target, train_tps)
                 for (kind, texts), splits in trainings.items()}
        total = sum(train.values()) + unlearning + evaluation
        print(f"## at {train_tps:.0f} training tok/s")
        print("training, min: " + ", ".join(f"{k} {minutes(v)}" for k, v in train.items()))
        print(f"evaluations: per split the target, the gold and {len(measured.runs)} methods "
              f"({sum(models.values())} in all); retrain cells reuse the gold's")
        print(f"whole grid: {total / 3600:.1f} h (training {sum(train.values()) / 3600:.2f} h, unlearning "
              f"{unlearning / 3600:.1f} h, evaluation {evaluation / 3600:.1f} h, of which MMLU {mmlu / 3600:.1f} h)")
        largest({**{f"{m} unlearning": sum(unl[s][m] for s in unl) for m in measured.runs},
                 "training": sum(train.values()), "evaluation: MMLU": mmlu,
                 "evaluation: the rest": evaluation - mmlu}, total, "the grid")


def main(report: str, throughput: str | None = None) -> None:
    found_muse, found_wmdp, where = data_folders()
    if not (found_muse or found_wmdp):
        print(f"no estimate: no MUSE-News or WMDP data folder ({where}); set UNLEARN_DATA_DIR to the data folder")
        return
    recs = load_complete(report)
    if recs is None:
        return
    from unlearn.models.tiny import train_tiny_tokenizer

    warm = load(throughput) if throughput else None
    model = recs["target fine-tuning"]["model"]
    counter = Counter(train_tiny_tokenizer())
    measured = Measured(recs, warm, counter, model)
    rates = training_rates(recs, warm)
    print(f"training rates: {' or '.join(f'{r:.0f}' for r in rates)} tok/s ("
          + ("target fine-tuning, warm" if warm else "target fine-tuning test, finetune method") + "; batch 16)")
    if measured.warm:
        print("warm unlearning runs (s, cold in brackets): " + ", ".join(
            f"{m} {r['seconds']:.2f} ({r['cold_s']:.2f})" for m, r in sorted(measured.warm.items())))
    cold = sorted(set(measured.runs) - set(measured.warm))
    if cold:
        print("the tier's cold per-method runs (tokens/s): "
              + ", ".join(f"{m} {measured.runs[m]['tokens_per_s']:.0f}" for m in cold))
    print(f"assumed: iwap makes {IWAP_PASSES} influence passes (5 rounds + a last check; the measured run made 1); "
          "trou's radius check runs every step; tokens padded as batched (the rates count padded positions); a "
          "token costs the same at any sequence length; model loads not counted")
    print(measured.describe())
    for found, name, estimate in ((found_muse, "MUSE-News", muse), (found_wmdp, "WMDP + MMLU + WikiText", wmdp)):
        if found:
            estimate(recs, warm, measured, counter, model)
        else:
            print(f"# {name}: no data folder ({where}); not estimated")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(*sys.argv[1:])
