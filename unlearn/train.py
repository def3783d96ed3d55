"""One training loop (accelerate) for fine-tuning and unlearning, plus cached fine-tuned artefacts."""

from __future__ import annotations

import hashlib
import json
import math
import random
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from tqdm.auto import tqdm

from unlearn.models.adapters import idle_adapters_off
from unlearn.scoring import Example, FrozenWeightsBf16, collate, mean_nll

TRAIN_CODE_VERSION = 2  # bump when the loop's arithmetic changes: it invalidates cached targets/golds


@contextmanager
def training_precision(device_type: str, bf16: bool):
    """The arithmetic of a training pass: bf16 autocast when ``bf16`` (else nothing changes). Under bf16 on a
    CPU, attention takes SDPA's math kernel: the CPU flash kernel's bf16 backward is the slower one at TOFU's
    sequence lengths (docs/lab/measurements.md, "Training kernels"); float32 keeps the default kernel, so the
    float32 tiers compute what they did."""
    with ExitStack() as stack:
        if bf16:
            stack.enter_context(torch.autocast(device_type, dtype=torch.bfloat16))
            if device_type == "cpu":
                stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        yield


@dataclass(frozen=True)
class TrainConfig:
    lr: float = 1e-5  # peak learning rate (AdamW)
    epochs: float = 1.0  # passes over the primary set (forget when unlearning, else the training rows)
    max_steps: int | None = None  # optimiser-step cap, overrides epochs when smaller
    batch_size: int = 8  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimiser step
    warmup_steps: int = 0  # linear warm-up
    schedule: str = "linear"  # transformers scheduler name after warm-up
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    seed: int = 0
    mixed_precision: str = "no"  # accelerate's setting: "no" or "bf16" (autocast; on CPU it needs AMX/AVX512-bf16 to pay off)
    progress: bool = True
    desc: str = "train"


@dataclass
class LossOutput:
    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class StepBatch:
    """What one step sees: a forget micro-batch (None when fine-tuning) and a retain micro-batch."""

    forget: dict[str, torch.Tensor] | None
    retain: dict[str, torch.Tensor] | None
    index: int = 0


LossFn = Callable[[torch.nn.Module, StepBatch], LossOutput]


class Stepper(Protocol):
    def __call__(self, model, batch: StepBatch, ctx: "LoopContext") -> dict[str, float]: ...


@dataclass
class LoopContext:
    accelerator: object
    optimizer: torch.optim.Optimizer
    scheduler: object
    cfg: TrainConfig
    step: int = 0


class NonFiniteLossError(FloatingPointError):
    pass


def check_finite(loss: torch.Tensor, step: int, desc: str) -> None:
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"{desc}: loss became {loss.detach().float().item()} at optimiser step {step}; "
                                 "lower the learning rate or check the method's hyperparameters")


def loss_stepper(loss_fn: LossFn) -> Stepper:
    """The standard step: backward, accumulate, clip, optimiser and scheduler step."""

    def step(model, batch: StepBatch, ctx: LoopContext) -> dict[str, float]:
        acc = ctx.accelerator
        with acc.accumulate(model):
            out = loss_fn(model, batch)
            check_finite(out.loss, ctx.step, ctx.cfg.desc)
            acc.backward(out.loss)
            if acc.sync_gradients and ctx.cfg.max_grad_norm:
                acc.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], ctx.cfg.max_grad_norm)
            ctx.optimizer.step()
            ctx.scheduler.step()
            ctx.optimizer.zero_grad(set_to_none=True)
        return {"loss": out.loss.detach().float().item(), **out.metrics}

    return step


def batches(examples: list[Example], batch_size: int, rng: random.Random) -> list[list[Example]]:
    order = list(range(len(examples)))
    rng.shuffle(order)
    return [[examples[i] for i in order[k: k + batch_size]] for k in range(0, len(order), batch_size)]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def train(model, pad_id: int, cfg: TrainConfig, *, retain: list[Example] | None = None,
          forget: list[Example] | None = None, loss_fn: LossFn | None = None, stepper: Stepper | None = None,
          optimizer_factory: Callable | None = None, probe: "Probe | None" = None) -> list[dict[str, float]]:
    """Run the loop; returns per-optimiser-step metrics.

    ``probe`` (unlearning dynamics): called before the first step and then every ``probe.every`` optimiser
    steps (0: once per epoch) and after the last (``final=True``: see ``Probe.defer_final``), on the model in
    eval mode without gradients.

    Fine-tuning: ``forget`` is None and each step sees a retain batch. Unlearning: one epoch is one pass
    over ``forget``; each forget batch is paired with a random retain batch (when ``retain`` is given).
    """
    from accelerate import Accelerator
    from transformers import get_scheduler

    if not forget and not retain:
        raise ValueError(f"{cfg.desc}: nothing to train on (empty forget and retain sets)")
    if (loss_fn is None) == (stepper is None):
        raise ValueError("give exactly one of loss_fn and stepper")
    seed_everything(cfg.seed)
    rng = random.Random(cfg.seed)
    device = next(model.parameters()).device
    primary = forget if forget else retain
    per_epoch = math.ceil(len(primary) / cfg.batch_size)
    total_micro = math.ceil(per_epoch * cfg.epochs)
    total_steps = math.ceil(total_micro / cfg.grad_accum)
    if cfg.max_steps is not None:
        total_steps = min(total_steps, cfg.max_steps)
        total_micro = min(total_micro, total_steps * cfg.grad_accum)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"{cfg.desc}: the model has no trainable parameters")
    if cfg.mixed_precision not in ("no", "bf16"):
        raise ValueError(f"{cfg.desc}: mixed_precision must be 'no' or 'bf16', got {cfg.mixed_precision!r}")
    # Autocast is applied here rather than through Accelerator(mixed_precision=...): accelerate keeps that
    # setting in a process-wide singleton that refuses to change, and one process may train a float32
    # tiny model and a bf16 SmolLM2 one after the other.
    accelerator = Accelerator(cpu=device.type == "cpu", gradient_accumulation_steps=cfg.grad_accum)
    optimizer = (optimizer_factory or (lambda ps: torch.optim.AdamW(ps, lr=cfg.lr, weight_decay=cfg.weight_decay)))(params)
    scheduler = get_scheduler(cfg.schedule, optimizer, num_warmup_steps=cfg.warmup_steps,
                              num_training_steps=max(total_steps, 1))
    optimizer, scheduler = accelerator.prepare(optimizer, scheduler)
    ctx = LoopContext(accelerator, optimizer, scheduler, cfg)
    step_fn = stepper or loss_stepper(loss_fn)
    history: list[dict[str, float]] = []
    probe_every = (probe.every or max(1, math.ceil(per_epoch / cfg.grad_accum))) if probe else 0
    if probe:
        probe(model, 0)
    model.train()
    micro = 0
    bf16 = cfg.mixed_precision == "bf16"
    frozen = FrozenWeightsBf16(model, bf16 and device.type == "cpu")
    try:
        with tqdm(total=total_micro, desc=cfg.desc, disable=not cfg.progress, leave=False) as bar:
            while micro < total_micro:
                for group in batches(primary, cfg.batch_size, rng):
                    if micro >= total_micro:
                        break
                    batch = collate(group, pad_id, device)
                    if forget:
                        other = rng.sample(retain, min(cfg.batch_size, len(retain))) if retain else None
                        sb = StepBatch(batch, collate(other, pad_id, device) if other else None, micro)
                    else:
                        sb = StepBatch(None, batch, micro)
                    frozen.on()
                    with training_precision(device.type, bf16):
                        metrics = step_fn(model, sb, ctx)
                    micro += 1
                    if micro % cfg.grad_accum == 0 or micro == total_micro:
                        ctx.step += 1
                        history.append(metrics)
                        if probe and (ctx.step % probe_every == 0 or micro == total_micro):
                            frozen.off()  # the probe scores at the evaluation's precision, on the float32 weights
                            probe(model, ctx.step, final=micro == total_micro)
                        bar.set_postfix(loss=f"{metrics.get('loss', float('nan')):.4f}")
                    bar.update(1)
    finally:
        frozen.drop()
    model.eval()
    return history


class Probe:
    """A cheap measure taken along an unlearning run: ``fn(model) -> {name: value}`` recorded with the step
    (and the phase, for methods of several phases) in ``points``. The model is left in eval mode.

    ``start``: a dict shared by every run that starts from the same model (a benchmark split's target): the
    first point of a run, taken at step 0 before the method changed anything, is measured once and reused
    from there. A method that changes the model before its first probe call says so (``model_changed``).
    ``defer_final``: the point at the training loop's last step is not measured but left ``deferred``, for the
    caller to fill from the evaluation of the final model (``fill_deferred``); the evaluation scores the same
    rows, so the point is the same up to float rounding. A probe call after a deferred point is an error."""

    def __init__(self, fn: Callable[[object], dict[str, float]], every: int = 0, start: dict | None = None,
                 defer_final: bool = False):
        self.fn, self.every, self.points, self.phase = fn, every, [], None
        self.start, self.defer_final, self.changed = start, defer_final, False

    def model_changed(self) -> None:
        """The model differs from the run's starting model: the next first point is measured, not reused."""
        self.changed = True

    def __call__(self, model, step: int, final: bool = False) -> None:
        if self.points and self.points[-1].get("deferred"):
            raise RuntimeError("the probe was called after its deferred final point: only the last step of a run "
                               "may be deferred (Probe(defer_final=True))")
        point = {"step": step, **({"phase": self.phase} if self.phase else {})}
        if final and self.defer_final:
            self.points.append({**point, "deferred": True})
            return
        if not self.points and step == 0 and not self.changed and self.start is not None and "values" in self.start:
            self.points.append({**point, **self.start["values"]})
            return
        was_training = model.training
        model.eval()
        with torch.no_grad(), idle_adapters_off(model):  # the start of a LoRA run: its adapters not moved yet
            values = self.fn(model)
        if not self.points and step == 0 and not self.changed and self.start is not None:
            self.start["values"] = dict(values)
        self.points.append({**point, **values})
        model.train(was_training)

    def fill_deferred(self, values: dict[str, float]) -> None:
        """Give the deferred final point (if any) its values, measured on the final model by the caller."""
        for pt in self.points:
            if pt.pop("deferred", False):
                pt.update(values)


def nll_loss(model, batch: StepBatch) -> LossOutput:
    """Plain fine-tuning: token-mean NLL of the retain (training) batch."""
    return LossOutput(mean_nll(model, batch.retain))


def rows_hash(pairs: list[tuple[str, str]]) -> str:
    return hashlib.sha256(json.dumps(pairs).encode()).hexdigest()[:16]


def finetuned_model_dir(kind: str, model_name: str, pairs: list[tuple[str, str]] | list[str], cfg: TrainConfig,
                        build_model: Callable[[], object], *, lora: object = None,
                        cache_root: Path | None = None, device: str = "cpu", text_length: int | None = None,
                        quant: str | None = None) -> Path:
    """Folder of ``model_name`` fine-tuned on ``pairs`` with ``cfg`` (target or gold), cached by recipe.
    ``text_length``: ``pairs`` are plain texts (causal-LM training on every token, MUSE's corpora), each cut
    to its first ``text_length`` tokens.

    LoRA adapters, when used, are merged into the full-precision base so the result is a plain model
    and the adapters-disabled reference of a later unlearning run is this model. ``quant="4bit"``: the model
    ``build_model`` gives is 4-bit + LoRA (QLoRA, gradient checkpointing on CUDA, as the methods train); it is
    saved dequantised with the adapters merged, and the recipe records the quantisation.
    """
    from unlearn.cache import cached_artefact
    from unlearn.models import merged_copy_for_save
    from unlearn.numerics import numerics_tag
    from unlearn.scoring import encode_qa, encode_text

    recipe = {"kind": kind, "model": model_name, "data": rows_hash(pairs), "n": len(pairs),
              "train": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "desc")},
              "lora": asdict(lora) if lora is not None else None, "code": TRAIN_CODE_VERSION,
              "numerics": numerics_tag(device)}
    if lora is not None:  # LoRA adapters are initialised from this seed (they used to take the process's RNG state)
        from unlearn.models import LORA_INIT_SEED

        recipe["lora_init_seed"] = LORA_INIT_SEED
    if text_length is not None:  # (absent for QA pairs, so their recipes and cached models stay as they were)
        recipe["text_length"] = text_length
    if quant is not None:  # (absent for full-precision bases, likewise)
        recipe["quant"] = quant

    def build(out: Path) -> None:
        lm = build_model()
        examples = ([encode_text(lm.tokenizer, t, text_length) for t in pairs] if text_length is not None
                    else [encode_qa(lm.tokenizer, q, a) for q, a in pairs])
        history = train(lm.model, lm.tokenizer.pad_token_id, cfg, retain=examples, loss_fn=nll_loss)
        merged_copy_for_save(lm.model).save_pretrained(out, safe_serialization=True)
        lm.tokenizer.save_pretrained(out)
        (out / "train_history.json").write_text(json.dumps(history))

    return cached_artefact(kind, recipe, build, root=cache_root)
