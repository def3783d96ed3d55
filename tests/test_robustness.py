"""Relearning attack and regeneration leakage: the split, the recovery formula, worst-case
leakage, and an attack that trains a copy (LoRA when the cell used LoRA)."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import memorised
from unlearn.models import LoraSpec, is_peft
from unlearn.benchmarks.tofu.robustness import (RobustnessConfig, attack, contains_answer, recovery, regeneration_leak, relearn_split,
                                worst_case_leak)


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 400), st.floats(0.0, 1.0), st.integers(1, 20), st.integers(0, 5))
def test_split_is_disjoint_covering_deterministic_and_sized(n, fraction, min_rows, seed):
    cfg = RobustnessConfig(fraction=fraction, min_rows=min_rows, seed=seed)
    a, e = relearn_split(n, cfg)
    assert not set(a) & set(e) and sorted(a + e) == list(range(n))
    assert len(a) == min(n - 1, max(min_rows, math.ceil(round(fraction * n, 9)))) and len(e) >= 1
    assert relearn_split(n, cfg) == (a, e)


def test_split_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 forget rows"):
        relearn_split(1, RobustnessConfig())


def test_recovery_formula():
    assert recovery(0.8, 0.4, 1.0) == pytest.approx(2 / 3)
    assert recovery(0.4, 0.4, 1.0) == 0.0
    assert recovery(1.2, 0.4, 1.0) == pytest.approx(4 / 3)  # unclipped here; the summary clips
    assert recovery(0.3, 0.4, 1.0) == pytest.approx(-1 / 6)
    assert recovery(0.9, 0.995, 1.0) is None  # nothing was removed: recovery is undefined


def test_leak_is_the_mean_of_each_questions_worst_case():
    scores = np.array([[0.1, 0.9, 0.2], [0.3, 0.3, 0.0]])
    assert worst_case_leak(scores) == pytest.approx((0.9 + 0.3) / 2)
    assert worst_case_leak(scores) > scores.mean()


def test_contains_answer_ignores_case_spacing_and_final_period():
    assert contains_answer("Sure: the author was born in  Paris, France!", "born in Paris, France.")
    assert not contains_answer("born in Lyon", "born in Paris")
    assert not contains_answer("anything", "")


def _params(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def test_attack_trains_a_copy_and_leaves_the_model_alone():
    lm, data = memorised()
    before = _params(lm.model)
    attacked = attack(lm.model, lm.tokenizer, data.forget[:5], RobustnessConfig(steps=3, lr=1e-2))
    after = _params(lm.model)
    assert all(torch.equal(before[n], after[n]) for n in before)
    changed = [n for n, p in attacked.named_parameters() if not torch.equal(p.detach(), before[n])]
    assert changed


def test_attack_trains_weights_a_method_left_frozen():
    lm, data = memorised()
    for p in lm.model.parameters():
        p.requires_grad_(False)  # as after DSU's merge_and_unload
    before = _params(lm.model)
    attacked = attack(lm.model, lm.tokenizer, data.forget[:5], RobustnessConfig(steps=2, lr=1e-2))
    assert any(not torch.equal(p.detach(), before[n]) for n, p in attacked.named_parameters())


def test_attack_on_a_lora_cell_trains_only_new_adapters():
    lm, data = memorised()
    attacked = attack(lm.model, lm.tokenizer, data.forget[:5], RobustnessConfig(steps=2, lr=1e-2), lora=LoraSpec(r=4))
    assert is_peft(attacked)
    base = _params(lm.model)
    for n, p in attacked.named_parameters():
        if "lora_" not in n:
            key = n.replace("base_model.model.", "").replace(".base_layer", "")
            assert torch.equal(p.detach(), base[key]), n


def test_attack_on_unmerged_adapters_adds_one_and_keeps_the_others_frozen():
    lm, data = memorised(LoraSpec(r=4))  # e.g. IWAP's masks kept a LoRA cell unmerged
    before = _params(lm.model)
    attacked = attack(lm.model, lm.tokenizer, data.forget[:5], RobustnessConfig(steps=2, lr=1e-2))
    for n, p in attacked.named_parameters():
        if "relearn" not in n:
            assert torch.equal(p.detach(), before[n]), n
    assert any("relearn" in n and not torch.equal(p.detach(), torch.zeros_like(p)) for n, p in attacked.named_parameters()
               if "lora_B" in n)


def test_regeneration_leak_takes_the_worst_generation():
    lm, data = memorised()
    rows = data.forget[:4]
    out = regeneration_leak(lm.model, lm.tokenizer, rows, RobustnessConfig(samples=2), max_new_tokens=24)
    assert out["generations_per_question"] == 6  # greedy + reworded greedy + 2 samples x 2 forms
    assert 0.0 <= out["regen_leak_greedy"] <= out["regen_leak"] <= 1.0
    assert regeneration_leak(lm.model, lm.tokenizer, rows, RobustnessConfig(samples=2), max_new_tokens=24) == out
