"""DSU, Dual Signed Adaptation Unlearning (this project; see docs/methods.md): a forget adapter learned by
descent on the forget split enters with weight -lambda (with ``retain_tol`` set: the largest lambda <= lam whose
negation raises a retain probe's NLL by at most retain_tol); a retain adapter repairs the damage."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Callable, ClassVar

import torch

from unlearn.methods import COUNT, NON_NEGATIVE, POSITIVE, UnlearnContext, procedure
from unlearn.models import LoraSpec, activate_adapters, add_lora, is_peft, is_quantised
from unlearn.scoring import collate, mean_nll
from unlearn.train import nll_loss, train

FORGET, RETAIN = "dsu_forget", "dsu_retain"


@dataclass(frozen=True)
class DSUConfig:
    # retain_tol from the most conservative: on ties (same efficacy, tokens and retain) grid order picks it
    tune_grid: ClassVar[dict] = {"forget_lr": ["10x", "30x"], "lam": ["2", "3"], "retain_tol": ["0.1", "0.15", "0.2"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"rank": COUNT, "alpha": NON_NEGATIVE, "forget_epochs": POSITIVE, "forget_lr": POSITIVE, "probe_size": COUNT}  # --set checks (unlearn/methods/overrides.py)
    lam: float = 1.0  # lambda: weight of the negated forget adapter (task-vector work uses up to 5)
    rank: int = 16  # LoRA rank of both adapters
    alpha: int = 32  # LoRA alpha of both adapters
    forget_epochs: float = 5.0  # E_f: descent epochs of the forget adapter on the forget split
    retain_training: bool = True  # False skips step 2 (used to check the lambda = 0 identity)
    # lr of the forget adapter's descent (None: the shared schedule's). On a target that already fits the
    # forget rows, descent at the shared lr barely moves the adapter, and its negation removes nothing; a
    # higher lr makes it over-fit them, so its delta carries the forget knowledge (docs/methods.md).
    forget_lr: float | None = None
    # Calibrated lambda (docs/methods.md): the negation is scaled back from lam until it raises the
    # retain NLL (nats/token, on the first probe_size retain rows, before the repair) by at most retain_tol.
    # A forget adapter trained on more authors carries more shared structure, so one fixed lambda that suits
    # one author wrecks utility on four; the tolerance is the same rule IWAP stops by. inf: lam as given.
    retain_tol: float = float("inf")
    probe_size: int = 64


def lora_layers(model):
    return [m for m in model.modules() if hasattr(m, "scaling") and isinstance(getattr(m, "scaling"), dict)]


def set_signed_scale(model, adapter: str, sign_weight: float) -> None:
    """Scale ``adapter``'s delta by ``sign_weight`` times its LoRA scaling alpha/r (signed adapter)."""
    for m in lora_layers(model):
        if adapter in m.scaling:
            m.scaling[adapter] = sign_weight * m.lora_alpha[adapter] / m.r[adapter]


def attach_adapters(model, cfg: DSUConfig):
    from peft import LoraConfig

    spec = LoraSpec(r=cfg.rank, alpha=cfg.alpha)
    if not is_peft(model):
        model = add_lora(model, spec, adapter_name=FORGET)
    else:
        model.add_adapter(FORGET, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules="all-linear",
                                             lora_dropout=0.0, task_type="CAUSAL_LM"))
    model.add_adapter(RETAIN, LoraConfig(r=cfg.rank, lora_alpha=cfg.alpha, target_modules="all-linear",
                                         lora_dropout=0.0, task_type="CAUSAL_LM"))
    return model


def calibrate_lambda(retain_nll_at: Callable[[float], float], lam: float, tol: float, iters: int = 6) -> tuple[float, list]:
    """The largest lambda in [0, lam] (to lam / 2**iters) whose retain NLL rises by at most ``tol`` over lambda 0.

    ``retain_nll_at(l)``: the retain probe's NLL with the forget adapter at weight -l. Bisection, so it assumes
    the rise grows with lambda (it does in every run measured; where it does not, the answer still satisfies the
    bound, it may just not be the largest such lambda). Returns (lambda, [(lambda tried, NLL), ...])."""
    if not (lam >= 0 and tol >= 0):  # (also false for NaN)
        raise ValueError(f"dsu: lam and retain_tol must be >= 0 (inf: no calibration), got lam={lam}, retain_tol={tol}")
    base = retain_nll_at(0.0)
    tried = [(0.0, base)]

    def ok(l: float) -> bool:
        nll = retain_nll_at(l)
        if not math.isfinite(nll):
            raise FloatingPointError(f"dsu: the retain probe's NLL is {nll} with the forget adapter at -{l:g}")
        tried.append((l, nll))
        return nll - base <= tol

    if tol == math.inf or ok(lam):
        return lam, tried
    lo, hi = 0.0, lam
    for _ in range(iters):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo, tried


def finish(model, quantised: bool):
    """W + dW_r - lambda dW_f: merged into full-precision weights, kept as signed adapters on 4-bit bases."""
    if quantised:
        return model
    return model.merge_and_unload(adapter_names=[FORGET, RETAIN])


@procedure("dsu", DSUConfig, "DSU: forget adapter learned by descent, negated (-lambda), plus a repairing retain adapter")
def dsu(ctx: UnlearnContext, cfg: DSUConfig):
    tok = ctx.lm.tokenizer
    quantised = is_quantised(ctx.lm.model)
    model = attach_adapters(ctx.lm.model, cfg)
    activate_adapters(model, [FORGET], trainable=FORGET)
    # E_f epochs, capped by the schedule's max_steps (--max_steps): each phase takes at most that many steps
    forget_lr = ctx.schedule.lr if cfg.forget_lr is None else cfg.forget_lr
    history = train(model, tok.pad_token_id, dataclasses.replace(ctx.schedule, epochs=cfg.forget_epochs, lr=forget_lr,
                                                                 desc="dsu:forget-adapter"),
                    retain=ctx.forget, loss_fn=nll_loss)  # descent on the forget rows as training rows
    lam, tried = cfg.lam, []
    if cfg.retain_tol != math.inf:
        probe = collate(ctx.retain[:cfg.probe_size], tok.pad_token_id, next(model.parameters()).device)

        @torch.no_grad()
        def retain_nll_at(l: float) -> float:
            set_signed_scale(model, FORGET, -l)
            return mean_nll(model, probe).item()

        lam, tried = calibrate_lambda(retain_nll_at, cfg.lam, cfg.retain_tol)
    set_signed_scale(model, FORGET, -lam)
    activate_adapters(model, [FORGET, RETAIN], trainable=RETAIN)
    repair = []
    if ctx.probe is not None:  # dynamics of the unlearned model: from the negation on (the forget phase fits, not forgets)
        ctx.probe.phase = "repair"
        ctx.probe.model_changed()  # its first point is the negated model's, not the target's
    if cfg.retain_training:
        retain_cfg = dataclasses.replace(ctx.schedule, epochs=1e9, max_steps=len(history), desc="dsu:retain-adapter")
        repair = train(model, tok.pad_token_id, retain_cfg, retain=ctx.retain, loss_fn=nll_loss, probe=ctx.probe)
    elif ctx.probe is not None:
        ctx.probe(model, 0)
    ctx.lm.model = finish(model, quantised)
    ctx.lm.model._unlearn_stats = {"forget_steps": len(history), "retain_steps": len(repair), "lambda": lam,
                                   "calibration": [[round(l, 4), round(n, 4)] for l, n in tried]}
    return ctx.lm
