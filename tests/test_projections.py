"""Hypothesis properties of TROU's projection and trust region, and IWAP's atom selection."""

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from unlearn.methods.losses import (influence_ratio, orthonormal_basis, project_orthogonal, removal_scores,
                                    token_log_odds, top_fraction, trust_region_step)

vec = st.integers(min_value=0, max_value=2**31 - 1)


def _draw(seed, k, d):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)


@settings(max_examples=60, deadline=None)
@given(vec, st.integers(1, 4), st.integers(5, 40))
def test_projection_orthogonal_idempotent_and_shrinking(seed, k, d):
    G, u = _draw(seed, k, d)
    Q = orthonormal_basis(G)
    p = project_orthogonal(u, Q)
    for g in G:  # orthogonal to every retain gradient
        assert abs(torch.dot(p, g).item()) <= 1e-9 * max(1.0, g.norm().item() * u.norm().item())
    torch.testing.assert_close(project_orthogonal(p, Q), p)  # idempotent
    assert p.norm() <= u.norm() * (1 + 1e-12)  # never longer


@settings(max_examples=40, deadline=None)
@given(vec, st.integers(1, 4), st.integers(5, 30))
def test_gradient_inside_retain_span_projects_to_zero(seed, k, d):
    G, _ = _draw(seed, k, d)
    coeffs = torch.randn(k, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    u = coeffs @ G
    assert project_orthogonal(u, orthonormal_basis(G)).norm() <= 1e-9 * max(1.0, u.norm().item())


@settings(max_examples=80, deadline=None)
@given(vec, st.lists(st.integers(0, 3), min_size=2, max_size=7), st.integers(5, 40))
def test_projection_orthogonal_for_rank_deficient_retain_gradients(seed, order, d):
    """Retain gradients that repeat directions (the same micro-batch twice, a scaled copy, in any order,
    e.g. [g1, g1, g3]): the projected step is still orthogonal to every one of them, and the basis has
    exactly as many columns as there are distinct directions."""
    basis, u = _draw(seed, 4, d)
    scales = torch.rand(len(order), generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64) + 0.5
    G = basis[order] * scales[:, None]
    Q = orthonormal_basis(G)
    assert Q.shape[1] == min(len(set(order)), d)
    p = project_orthogonal(u, Q)
    for g in G:
        assert abs(torch.dot(p, g).item()) <= 1e-9 * max(1.0, g.norm().item() * u.norm().item())


def test_duplicated_retain_gradient_keeps_the_other_directions():
    """The review's counterexample: G = [g1, g1, g3] must protect g3 as well as g1."""
    g = torch.Generator().manual_seed(0)
    g1, g3, u = (torch.randn(12, generator=g, dtype=torch.float64) for _ in range(3))
    p = project_orthogonal(u, orthonormal_basis(torch.stack([g1, g1, g3])))
    assert abs(torch.dot(p, g1).item()) < 1e-10 and abs(torch.dot(p, g3).item()) < 1e-10


def test_zero_retain_gradient_is_dropped():
    G = torch.zeros(2, 5, dtype=torch.float64)
    u = torch.arange(5, dtype=torch.float64)
    torch.testing.assert_close(project_orthogonal(u, orthonormal_basis(G)), u)


@settings(max_examples=60, deadline=None)
@given(vec, st.integers(1, 50), st.floats(1e-4, 10))
def test_trust_region_step_within_radius(seed, d, radius):
    _, v = _draw(seed, 1, d)
    step = trust_region_step(v, radius)
    assert step.norm().item() <= radius * (1 + 1e-9)
    if v.norm() <= radius:
        torch.testing.assert_close(step, -v)


@settings(max_examples=80, deadline=None)
@given(vec, st.integers(1, 300), st.floats(0.0, 1.0))
def test_top_fraction_prunes_exactly_ceil_pn(seed, n, p):
    scores = torch.rand(n, generator=torch.Generator().manual_seed(seed))
    idx = top_fraction(scores, p)
    assert len(idx) == min(n, math.ceil(round(p * n, 9)))
    assert len(set(idx.tolist())) == len(idx)
    if 0 < len(idx) < n:  # everything chosen scores at least as high as everything left
        rest = torch.ones(n, dtype=torch.bool)
        rest[idx] = False
        assert scores[idx].min() >= scores[rest].max()


@settings(max_examples=40, deadline=None)
@given(vec, st.integers(2, 100), st.floats(1e-3, 1e3))
def test_influence_selection_invariant_to_loss_scale(seed, n, c):
    g = torch.Generator().manual_seed(seed)
    f, r = torch.rand(n, generator=g, dtype=torch.float64), torch.rand(n, generator=g, dtype=torch.float64) + 0.1
    # scaling both losses by c scales both influences by c: the chosen atoms do not move
    assert top_fraction(influence_ratio(f, r), 0.1).tolist() == top_fraction(influence_ratio(c * f, c * r), 0.1).tolist()


@settings(max_examples=40, deadline=None)
@given(vec, st.integers(2, 100), st.floats(1e-3, 1e3))
def test_removal_scores_invariant_to_objective_scale_and_ignore_atoms_that_help(seed, n, c):
    g = torch.Generator().manual_seed(seed)
    f, r = torch.randn(n, generator=g, dtype=torch.float64), torch.randn(n, generator=g, dtype=torch.float64)
    s = removal_scores(f, r)
    torch.testing.assert_close(removal_scores(c * f, c * r), s)  # same objective, other units: same scores
    assert (s[f <= 0] == 0).all() and (s[f > 0] > 0).all()  # removal that would raise the forget objective: never first


@settings(max_examples=40, deadline=None)
@given(vec, st.integers(2, 50))
def test_token_log_odds_is_log_p_over_one_minus_p(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    logits = 4 * torch.randn(6, vocab, generator=g, dtype=torch.float64)
    targets = torch.randint(0, vocab, (6,), generator=g)
    p = logits.softmax(-1).gather(-1, targets[:, None])[:, 0]
    torch.testing.assert_close(token_log_odds(logits, targets), (p / (1 - p)).log())


@settings(max_examples=60, deadline=None)
@given(vec, st.lists(st.integers(0, 3), min_size=1, max_size=7), st.integers(5, 40))
def test_gram_basis_for_long_gradients_spans_what_the_svd_basis_spans(seed, order, d):
    """The Gram-matrix route (used above GRAM_ABOVE parameters: a 4B model's LoRA gradients, where cuSOLVER's SVD
    refused the shape) gives an orthonormal basis of the same span and rank as the SVD route, repeated
    directions included."""
    from unlearn.methods import losses

    basis, u = _draw(seed, 4, d)
    scales = torch.rand(len(order), generator=torch.Generator().manual_seed(seed + 2), dtype=torch.float64) + 0.5
    G = basis[order] * scales[:, None]
    svd = orthonormal_basis(G)
    gram = losses._orthonormal_basis_gram(G, 1e-6, chunk=3)  # slices of 3 columns: the chunked sums too
    assert gram.shape == svd.shape
    torch.testing.assert_close(gram.T @ gram, torch.eye(gram.shape[1], dtype=gram.dtype), atol=1e-9, rtol=0)
    torch.testing.assert_close(gram @ gram.T, svd @ svd.T, atol=1e-8, rtol=0)  # the same projector
    for g in G:
        assert abs(torch.dot(project_orthogonal(u, gram), g).item()) <= 1e-8 * max(1.0, g.norm().item() * u.norm().item())


def test_orthonormal_basis_takes_the_gram_route_only_for_long_gradients(monkeypatch):
    from unlearn.methods import losses

    calls = []
    monkeypatch.setattr(losses, "_orthonormal_basis_gram", lambda G, tol: calls.append(G.shape) or torch.zeros(G.shape[1], 0))
    orthonormal_basis(torch.ones(2, 10))
    assert calls == []
    monkeypatch.setattr(losses, "GRAM_ABOVE", 5)
    orthonormal_basis(torch.ones(2, 10))
    assert calls == [(2, 10)]
