"""Loss kernels: hand-computed values, limits/equivalences, finiteness."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn.methods.losses import (grad_ascent_loss, grad_diff_loss, masked_mse, npo_loss, simnpo_loss,
                                    token_mean_nll)


def test_token_mean_nll_by_hand():
    """sums (-2, -4), counts (1, 3): NLL = 6 / 4 = 1.5; gradient ascent is its negation, -1.5."""
    sums, counts = torch.tensor([-2.0, -4.0]), torch.tensor([1, 3])
    assert token_mean_nll(sums, counts).item() == pytest.approx(1.5)
    assert grad_ascent_loss(sums, counts).item() == pytest.approx(-1.5)


def test_npo_by_hand():
    """beta = 1, logp - logp_ref = (0, log 3): (2/1) * mean(log 2, log 4) = log 2 + log 4 = 3 log 2."""
    logp, ref = torch.tensor([-1.0, -1.0 + math.log(3)]), torch.tensor([-1.0, -1.0])
    assert npo_loss(logp, ref, beta=1.0).item() == pytest.approx(3 * math.log(2), rel=1e-6)


def test_simnpo_by_hand():
    """beta = 2, gamma = 0, NLL per token = (1, 0.5): -(2/2) mean(log s(2), log s(1))."""
    sums, counts = torch.tensor([-2.0, -1.0]), torch.tensor([2, 2])
    expected = -0.5 * (math.log(1 / (1 + math.exp(-2))) + math.log(1 / (1 + math.exp(-1))))
    assert simnpo_loss(sums, counts, beta=2.0, gamma=0.0).item() == pytest.approx(expected, rel=1e-6)


def test_npo_gradient_equals_grad_ascent_at_reference():
    """At pi_theta = pi_ref, dNPO/dlogp_i = (2/beta) * beta * sigmoid(0) / B = 1/B: the gradient of
    mean_i logp_i (sequence-sum gradient ascent), whatever beta."""
    for beta in (0.1, 1.0, 5.0):
        logp = torch.tensor([-3.0, -1.5, -7.0], requires_grad=True)
        npo_loss(logp, logp.detach(), beta).backward()
        ga = logp.detach().clone().requires_grad_(True)
        ga.mean().backward()
        torch.testing.assert_close(logp.grad, ga.grad)


def test_grad_diff_with_alpha_zero_equals_grad_ascent():
    fs, fc = torch.tensor([-3.0, -2.0]), torch.tensor([3, 2])
    rs, rc = torch.tensor([-1.0]), torch.tensor([4])
    assert grad_diff_loss(fs, fc, rs, rc, alpha=0.0).item() == grad_ascent_loss(fs, fc).item()


def test_masked_mse_by_hand():
    """h = [[1, 1], [9, 9]] with the second token masked, target 0: mean((1+1)/2) = 1."""
    h = torch.tensor([[[1.0, 1.0], [9.0, 9.0]]])
    assert masked_mse(h, torch.zeros(2), torch.tensor([[1, 0]])).item() == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-50, 0), min_size=1, max_size=6), st.floats(0.01, 10))
def test_kernels_finite_on_random_inputs_including_all_masked(values, beta):
    sums = torch.tensor(values)
    counts = torch.tensor([0] * len(values))  # all rows fully masked
    for loss in (token_mean_nll(sums, counts), simnpo_loss(sums, counts, beta, 0.0),
                 npo_loss(sums, torch.zeros_like(sums), beta)):
        assert torch.isfinite(loss)
    counts = torch.randint(1, 20, (len(values),))
    assert torch.isfinite(simnpo_loss(sums, counts, beta, 1.0))
    assert torch.isfinite(grad_diff_loss(sums, counts, sums, counts, 1.0))
