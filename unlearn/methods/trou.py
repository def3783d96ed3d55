"""TROU, Trust-Region Orthogonal Unlearning (this project; docs/methods.md is the definition): the optimiser's
forget update, projected orthogonal to retain gradients, plus the optimiser's retain-repair update, inside a
trust region that rejects and shrinks.

The trust region bounds the retain probe's NLL *rise* over pi_ref (guard "nll") and the step carries a retain
repair (``retain_weight`` times the optimiser's update, Adam by default with its own state and the same lr, of
the unweighted mean of the k retain micro-batches' NLL gradients that the projection already computed; added
after the projection and clipped to the radius with the forget part). The bound is one-sided because a KL on
the probe charges every change, improvements included, so a repair would spend the budget; the NLL rise
charges only harm. The radius grows when a step used little of the budget left (``grow_rule="remaining"``): a
test on the cumulative guard would freeze the radius once the guard passed delta/4. Measurements:
docs/methods.md.
``guard="kl", retain_weight=0, grow_rule="level"`` is the old method."""

from __future__ import annotations

import dataclasses
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import torch

from unlearn.methods import ABOVE_ONE, COUNT, POSITIVE, UnlearnContext, procedure
from unlearn.methods.losses import (adam_direction, grad_ascent_loss, kl_ref_to_policy, npo_loss, orthonormal_basis,
                                    project_orthogonal, trust_region_step)
from unlearn.scoring import answer_logprobs, collate, mean_nll
from unlearn.train import StepBatch, train


@dataclass(frozen=True)
class TROUConfig:
    tune_grid: ClassVar[dict] = {"lr": ["1x", "3x", "10x"], "delta": ["0.02", "0.05", "0.1"], "retain_weight": ["1", "2"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"beta": POSITIVE, "k_retain": COUNT, "delta": POSITIVE, "grow": ABOVE_ONE, "probe_size": COUNT}  # --set checks (unlearn/methods/overrides.py)
    forget_loss: str = "npo"  # "npo" or "grad_ascent"
    beta: float = 0.1  # NPO beta when forget_loss = "npo"
    optimizer: str = "adam"  # "adam" (bias-corrected m/(sqrt(v)+eps) * lr) or "sgd" (lr * g)
    k_retain: int = 2  # retain micro-batches per step whose gradients span the protected subspace
    buffer: int = 0  # recent retain gradients also kept in the span
    delta: float = 0.05  # bound on the guard (below) over the retain probe, nats/token
    grow: float = 1.5  # radius growth when the guard < delta/4 and the forget loss fell
    r_max_factor: float = 10.0  # r_max = this times r_0 (its definition leaves r_max open)
    probe_size: int = 8  # retain rows in the fixed probe batch
    guard: str = "nll"  # "nll": retain NLL rise over pi_ref's <= delta; "kl": KL(pi_ref || pi_theta) <= delta
    retain_weight: float = 1.0  # weight of the unprojected repair: the optimiser's update of the mean retain gradient
    # when an accepted step grows the radius (x grow, if the forget loss also fell): "remaining": the step used under
    # a quarter of the budget left before it (guard - guard_before < (delta - guard_before) / 4; a step that lowers
    # the guard always qualifies); "level": the guard itself is under delta / 4 (once the cumulative guard passes
    # delta / 4 the radius can only shrink, and freezes after the first rejections)
    grow_rule: str = "remaining"


def flat_grad(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1).float() for g, p in zip(grads, params)])


@torch.no_grad()
def add_to_params(params: list[torch.nn.Parameter], delta: torch.Tensor) -> None:
    offset = 0
    for p in params:
        n = p.numel()
        p.add_(delta[offset:offset + n].view_as(p).to(p.dtype))
        offset += n


def split_batch(batch: dict[str, torch.Tensor], k: int) -> list[dict[str, torch.Tensor]]:
    n = batch["input_ids"].shape[0]
    k = max(1, min(k, n))
    bounds = [round(i * n / k) for i in range(k + 1)]
    return [{key: v[bounds[i]:bounds[i + 1]] for key, v in batch.items()} for i in range(k)]


def step_was_small(guard: float, guard_before: float, delta: float, rule: str) -> bool:
    """Whether an accepted step may grow the radius. "remaining": it used under a quarter of the budget left before
    it (a step that lowers the guard always qualifies); "level": the guard is under delta / 4. The two agree on a
    first step (guard_before 0)."""
    if rule == "level":
        return guard < delta / 4
    return guard - guard_before < (delta - guard_before) / 4


class TROUStepper:
    """One TROU step per forget batch; the loop's own optimiser is not used (TROU keeps its Adam states: the forget
    update's and, with retain_weight > 0, the repair's; both commit only when the step is accepted)."""

    ADAM_BETAS = (0.9, 0.999)

    def __init__(self, params, cfg: TROUConfig, ref, probe: dict, lr: float):
        if (cfg.forget_loss not in ("npo", "grad_ascent") or cfg.optimizer not in ("adam", "sgd")
                or cfg.guard not in ("kl", "nll") or cfg.grow_rule not in ("remaining", "level")
                or not 0 <= cfg.retain_weight < float("inf")):  # NaN fails too
            raise ValueError(f"trou: forget_loss must be npo|grad_ascent, optimizer adam|sgd, guard kl|nll, grow_rule "
                             f"remaining|level and retain_weight finite >= 0, got {cfg}")
        self.params, self.cfg, self.ref, self.probe, self.lr = params, cfg, ref, probe, lr
        d = sum(p.numel() for p in params)
        dev = params[0].device
        self.m, self.v, self.t = torch.zeros(d, device=dev), torch.zeros(d, device=dev), 0
        self.retain_state = (torch.zeros(d, device=dev), torch.zeros(d, device=dev), 0) if cfg.retain_weight else None
        self._ref_probe_nll: float | None = None
        self.radius: float | None = None
        self.r_max = float("inf")
        self.recent: deque = deque(maxlen=cfg.buffer) if cfg.buffer else deque(maxlen=1)
        self.accepted = self.rejected = 0
        self.guard_before = 0.0  # the guard at the last accepted parameters (pi_ref's: 0 for both guards)
        self._ref_probe_logits: torch.Tensor | None = None
        self._ref_batch, self._ref_logp = None, None

    def forget_loss(self, model, batch) -> torch.Tensor:
        if self.cfg.forget_loss == "grad_ascent":
            return grad_ascent_loss(*answer_logprobs(model, batch))
        # pi_ref is frozen: its log-probs of this batch are computed once per step and reused by the
        # radius-growth check below (the same numbers; recomputing them was a wasted forward pass)
        if self._ref_batch is not batch:
            with self.ref.model() as ref_net:  # reference first: no graph is held while it runs
                self._ref_logp, _ = answer_logprobs(ref_net, batch)
            self._ref_batch = batch
        logp, _ = answer_logprobs(model, batch)
        return npo_loss(logp, self._ref_logp, self.cfg.beta)

    def update(self, g: torch.Tensor, state=None):
        """The optimiser's update u for gradient g, and its would-be state (committed only on acceptance)."""
        m0, v0, t0 = state if state is not None else (self.m, self.v, self.t)
        if self.cfg.optimizer == "sgd":
            return self.lr * g, (m0, v0, t0)
        b1, b2 = self.ADAM_BETAS
        m, v, t = b1 * m0 + (1 - b1) * g, b2 * v0 + (1 - b2) * g.square(), t0 + 1
        return adam_direction(m, v, t, self.lr, self.ADAM_BETAS), (m, v, t)

    def probe_nll_rise(self, model) -> float:
        """Token-mean NLL of the probe's answers under the model minus under pi_ref (negative: it improved)."""
        with torch.no_grad():
            if self._ref_probe_nll is None:
                with self.ref.model() as ref_net:
                    self._ref_probe_nll = mean_nll(ref_net, self.probe).item()
            return mean_nll(model, self.probe).item() - self._ref_probe_nll

    def probe_kl(self, model) -> float:
        with torch.no_grad():
            if self._ref_probe_logits is None:  # the probe batch and pi_ref are fixed: one forward for the run
                with self.ref.model() as ref_net:
                    self._ref_probe_logits = ref_net(input_ids=self.probe["input_ids"],
                                                     attention_mask=self.probe["attention_mask"]).logits
            ref_logits = self._ref_probe_logits
            logits = model(input_ids=self.probe["input_ids"], attention_mask=self.probe["attention_mask"]).logits
        mask = self.probe["labels"][:, 1:] != -100  # KL over the answer positions, as every other score
        return kl_ref_to_policy(ref_logits[:, :-1], logits[:, :-1], mask).item()

    def __call__(self, model, batch: StepBatch, ctx) -> dict[str, float]:
        loss_f = self.forget_loss(model, batch.forget)
        u, state = self.update(flat_grad(loss_f, self.params))
        if self.radius is None:
            self.radius = u.norm().item()  # r_0 = the norm of the first unprojected update
            self.r_max = self.cfg.r_max_factor * self.radius
        retain_grads = [flat_grad(mean_nll(model, mb), self.params) for mb in split_batch(batch.retain, self.cfg.k_retain)]
        G = torch.stack(retain_grads + (list(self.recent) if self.cfg.buffer else []))
        if self.cfg.buffer:
            self.recent.extend(retain_grads)
        d = project_orthogonal(u, orthonormal_basis(G))
        if self.retain_state is not None:
            # the step's own retain gradients are G's first rows: their mean without stacking them again
            u_r, retain_state = self.update(G[: len(retain_grads)].mean(0), self.retain_state)
            d = d + self.cfg.retain_weight * u_r
        step = trust_region_step(d, self.radius)
        saved = [p.detach().clone() for p in self.params]
        add_to_params(self.params, step)
        guard = self.probe_kl(model) if self.cfg.guard == "kl" else self.probe_nll_rise(model)
        if guard > self.cfg.delta:  # reject: restore parameters bit for bit; optimiser state was never committed
            with torch.no_grad():
                for p, s in zip(self.params, saved):
                    p.copy_(s)
            self.radius /= 2
            self.rejected += 1
            return {"loss": loss_f.item(), "guard": guard, "accepted": 0.0, "radius": self.radius}
        self.m, self.v, self.t = state
        if self.retain_state is not None:
            self.retain_state = retain_state
        self.accepted += 1
        small = step_was_small(guard, self.guard_before, self.cfg.delta, self.cfg.grow_rule)
        self.guard_before = guard
        if small:
            with torch.no_grad():
                after = self.forget_loss(model, batch.forget).item()
            if after < loss_f.item():
                self.radius = min(self.radius * self.cfg.grow, self.r_max)
        return {"loss": loss_f.item(), "guard": guard, "accepted": 1.0, "radius": self.radius, "step_norm": step.norm().item()}


@procedure("trou", TROUConfig, "TROU: optimiser update projected orthogonal to retain gradients, plus a retain repair, "
           "in a trust region on the retain probe's NLL rise")
def trou(ctx: UnlearnContext, cfg: TROUConfig):
    model = ctx.lm.model
    ref = ctx.ref()
    params = [p for p in model.parameters() if p.requires_grad]
    device = next(model.parameters()).device
    probe = collate(ctx.retain[: cfg.probe_size], ctx.lm.tokenizer.pad_token_id, device)
    stepper = TROUStepper(params, cfg, ref, probe, ctx.schedule.lr)
    train(model, ctx.lm.tokenizer.pad_token_id, dataclasses.replace(ctx.schedule, desc="trou", grad_accum=1),
          forget=ctx.forget, retain=ctx.retain, stepper=stepper, probe=ctx.probe)
    # the cell runner reads _unlearn_stats into the cell's method_stats (it was _trou_stats, which nothing read)
    model._unlearn_stats = {"accepted": stepper.accepted, "rejected": stepper.rejected, "radius": stepper.radius}
    return ctx.lm
