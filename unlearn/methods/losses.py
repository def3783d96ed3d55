"""Pure loss and projection kernels over tensors (no models): what the unit and Hypothesis tests hit."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def token_mean_nll(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """NLL = -sum_i logp_i / sum_i n_i over a batch of per-sequence log-prob sums (B,) and counts (B,)."""
    return -sums.sum() / counts.sum().clamp_min(1)  # negated: log-prob -> loss


def grad_ascent_loss(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """-NLL(f): minimising it raises the forget NLL."""
    return -token_mean_nll(sums, counts)  # negated: ascend the NLL


def grad_diff_loss(f_sums, f_counts, r_sums, r_counts, alpha: float) -> torch.Tensor:
    """-NLL(f) + alpha * NLL(r)."""
    return grad_ascent_loss(f_sums, f_counts) + alpha * token_mean_nll(r_sums, r_counts)


def npo_loss(logp: torch.Tensor, logp_ref: torch.Tensor, beta: float) -> torch.Tensor:
    """(2/beta) * mean_i log(1 + exp(beta * (logp_i - logp_ref_i))), logp are per-sequence sums (B,).

    log(1+exp(x)) is computed as softplus for stability. At logp = logp_ref the gradient w.r.t. logp_i
    is 1/B: exactly the gradient of mean_i logp_i (sequence-sum gradient ascent).
    """
    return (2.0 / beta) * F.softplus(beta * (logp - logp_ref)).mean()


def simnpo_loss(sums: torch.Tensor, counts: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """-(2/beta) * mean_i log sigmoid(beta * NLLsum_i / |y_i| - gamma); rows with |y| = 0 are skipped."""
    valid = counts > 0
    nll_per_token = -sums / counts.clamp_min(1)  # negated: log-prob -> NLL
    terms = F.logsigmoid(beta * nll_per_token - gamma)
    if not valid.any():
        return sums.sum() * 0.0
    return -(2.0 / beta) * terms[valid].mean()  # negated: maximise log sigmoid


def masked_mse(h: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid tokens (mask (B, L)) and hidden dims of (h - target)^2; target broadcasts."""
    sq = (h.float() - target.float()).square().mean(-1)
    m = mask.to(sq.dtype)
    return (sq * m).sum() / m.sum().clamp_min(1)


def rmu_control_vector(dim: int, c: float, generator: torch.Generator) -> torch.Tensor:
    """c * u / ||u||, u ~ U[0, 1)^dim."""
    u = torch.rand(dim, generator=generator)
    return c * u / u.norm()


def kl_ref_to_policy(logits_ref: torch.Tensor, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token-mean KL(pi_ref || pi_theta) over valid positions: sum_v p_ref (log p_ref - log p_theta)."""
    lr_ = torch.log_softmax(logits_ref.float(), -1)
    lp = torch.log_softmax(logits.float(), -1)
    kl = (lr_.exp() * (lr_ - lp)).sum(-1)
    m = mask.to(kl.dtype)
    return (kl * m).sum() / m.sum().clamp_min(1)


def orthonormal_basis(G: torch.Tensor, rel_tol: float = 1e-6) -> torch.Tensor:
    """Q (D, r): orthonormal basis of the span of the rows of G (k, D), r = numerical rank of G.

    Rank-revealing: the left singular vectors of G^T whose singular values exceed ``rel_tol`` times the
    largest. (An unpivoted QR that drops columns with a small R diagonal loses directions when rows are
    linearly dependent: G = [g1, g1, g3] kept only span(g1), so the projected step was not orthogonal to
    g3.) A thin SVD of (D, k) costs O(D k^2), k being a handful of retain micro-batches.
    """
    if G.numel() == 0 or G.shape[0] == 0:
        return G.new_zeros((G.shape[-1], 0))
    if G.shape[1] > GRAM_ABOVE:
        return _orthonormal_basis_gram(G, rel_tol)
    Gd = G.double()
    U, S, _ = torch.linalg.svd(Gd.T, full_matrices=False)  # (D, k), (k,)
    if S.numel() == 0 or S.max() <= 0:
        return G.new_zeros((G.shape[1], 0))
    good = S > rel_tol * S.max()
    return U[:, good].to(G.dtype)


GRAM_ABOVE = 1 << 24  # parameter counts above which the basis comes from the (k, k) Gram matrix (the tiny tier,
# 2M, and SmolLM2 LoRA, 5M, stay on the SVD; Qwen3-4B LoRA, 33M, does not)


def _orthonormal_basis_gram(G: torch.Tensor, rel_tol: float, chunk: int = 1 << 22) -> torch.Tensor:
    """``orthonormal_basis`` for a very long G (k, D), such as every LoRA parameter of a 4B model (D = 33M): the
    eigendecomposition of the (k, k) Gram matrix G G^T = V S^2 V^T gives the same left singular vectors of G^T,
    U = G^T V S^-1, with the same rank rule (S > rel_tol * max S), then one QR pass restores orthonormality
    (the Gram matrix squares the condition number). Float64 in slices of ``chunk`` columns, so no (k, D) float64
    copy is made. Why: cuSOLVER's SVD refuses G^T of that shape (CUSOLVER_STATUS_INVALID_VALUE on Qwen3-4B's
    LoRA; docs/guide.md, GPU tier), and it would hold several (D, k) float64 copies."""
    k, D = G.shape
    M = torch.zeros((k, k), dtype=torch.float64, device=G.device)
    for s in range(0, D, chunk):
        g = G[:, s:s + chunk].double()
        M += g @ g.T
    evals, V = torch.linalg.eigh(M)
    sig = evals.clamp_min(0).sqrt()
    if sig.numel() == 0 or sig.max() <= 0:
        return G.new_zeros((D, 0))
    good = sig > rel_tol * sig.max()
    W = V[:, good] / sig[good]  # (k, r)
    U = torch.cat([(G[:, s:s + chunk].double().T @ W).to(G.dtype) for s in range(0, D, chunk)])  # (D, r)
    Q, _ = torch.linalg.qr(U)
    return Q


def project_orthogonal(u: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """d = u - Q Q^T u: the part of u orthogonal to span(Q) (Q orthonormal columns)."""
    if Q.shape[1] == 0:
        return u.clone()
    Qd = Q.double()
    ud = u.double()
    return (ud - Qd @ (Qd.T @ ud)).to(u.dtype)


def trust_region_step(d: torch.Tensor, radius: float) -> torch.Tensor:
    """Delta = -min(1, radius / ||d||) * d, so ||Delta|| <= radius; d = 0 gives a zero step."""
    norm = d.norm().item()
    scale = 1.0 if norm == 0 or norm <= radius else radius / norm
    return -scale * d  # negated: d is an update to subtract, as in an optimiser step


def adam_direction(m: torch.Tensor, v: torch.Tensor, t: int, lr: float, betas=(0.9, 0.999), eps=1e-8):
    """Bias-corrected Adam update lr * m_hat / (sqrt(v_hat) + eps) (the amount subtracted from theta)."""
    m_hat = m / (1 - betas[0] ** t)
    v_hat = v / (1 - betas[1] ** t)
    return lr * m_hat / (v_hat.sqrt() + eps)


def top_fraction(scores: torch.Tensor, p: float) -> torch.Tensor:
    """Indices of the ceil(p * N) highest scores (ties broken by index, deterministic)."""
    n = scores.numel()
    # round first so that 0.01 * 100 counts as 1, not ceil(1.0000000000000002) = 2
    k = min(n, math.ceil(round(p * n, 9))) if p > 0 else 0
    if k == 0:
        return torch.zeros(0, dtype=torch.long)
    order = sorted(range(n), key=lambda i: (-float(scores[i]), i))
    return torch.tensor(order[:k], dtype=torch.long)


def influence_ratio(forget_infl: torch.Tensor, retain_infl: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """s(a) = I_f(a) / (I_r(a) + eps * mean(I_r)): eps is relative to the mean retain influence."""
    return forget_infl / (retain_infl + eps * retain_infl.mean().clamp_min(1e-30))


def token_log_odds(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-token log-odds of the answer token, z_y - logsumexp_{j != y} z_j = log(p_y / (1 - p_y)).

    Unlike the NLL its gradient does not vanish as p_y -> 1 (d/dz_y = 1), so first-order attributions
    on memorised answers are not noise; 0 means the answer token is no longer more likely than not."""
    z_y = logits.gather(-1, targets[..., None])[..., 0]
    others = logits.scatter(-1, targets[..., None], float("-inf")).logsumexp(-1)
    return z_y - others


def removal_scores(forget_contrib: torch.Tensor, retain_contrib: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """IWAP's signed score: max(c_f, 0) / (|c_r| + eps * mean|c_r|), c = sum_{w in atom} w * dObjective/dw.

    c_f > 0 means removing the atom lowers the forget objective to first order (removal changes it by
    about -c); atoms whose removal would raise it score 0. eps is relative to the mean retain magnitude."""
    r = retain_contrib.abs()
    return forget_contrib.clamp_min(0) / (r + eps * r.mean().clamp_min(1e-30))
