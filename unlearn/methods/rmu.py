"""Representation Misdirection for Unlearning (Li et al. 2024, WMDP, arXiv:2403.03218), adaptive by default."""

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import torch

from unlearn.methods import COUNT, NON_NEGATIVE, POSITIVE, UnlearnContext, procedure
from unlearn.methods.losses import masked_mse, rmu_control_vector
from unlearn.models import decoder_layers
from unlearn.train import LossOutput, train


@dataclass(frozen=True)
class RMUConfig:
    tune_grid: ClassVar[dict] = {"lr": ["10x", "30x", "100x"], "beta": ["5", "20"]}  # `unlearn tune`'s grid
    rules: ClassVar[dict] = {"beta": POSITIVE, "alpha": NON_NEGATIVE, "lr": POSITIVE, "n_update_layers": COUNT}  # --set checks (unlearn/methods/overrides.py)
    # Steering coefficient. None (default): adaptive RMU (Dang et al. 2024, arXiv:2408.06223): each forget
    # token's target is beta * ||h_frozen(x_t)|| * u, so the push scales with the hooked layer's own
    # activation norm and works at any model size. A number: the fixed coefficient of the original RMU
    # (Li et al. 2024 use c = 6.5 with alpha = 1200 on Zephyr-7B: `--set rmu.c=6.5 --set rmu.alpha=1200`),
    # which on tiny-qwen3 and SmolLM2 does nothing (measured: forget efficacy 0 on all three tiny splits).
    c: float | None = None
    beta: float = 5.0  # adaptive scale (used when c is None)
    alpha: float = 1200.0  # weight of the retain activation-matching loss
    lr: float | None = None  # RMU's own learning rate (None: the shared schedule's); it updates 3 down_proj
    # matrices only, and the original used a higher lr than the other methods (5e-5 vs 1e-5 at 7B)
    layer: int | None = None  # hooked decoder layer; None = round(7/32 of the depth) as in Zephyr-7B
    n_update_layers: int = 3  # layers (layer-2 .. layer) whose mlp.down_proj is updated


def rmu_layers(n_layers: int, cfg: RMUConfig) -> tuple[int, list[int]]:
    """Hook layer and the updated layers; Zephyr-7B's (7; 5, 6, 7) scaled to ``n_layers``."""
    layer = cfg.layer if cfg.layer is not None else max(0, min(n_layers - 1, round(n_layers * 7 / 32)))
    if not 0 <= layer < n_layers:
        raise ValueError(f"rmu.layer={layer} outside the model's {n_layers} layers")
    return layer, list(range(max(0, layer - cfg.n_update_layers + 1), layer + 1))


def restrict_trainable(model, layer_ids: list[int]) -> None:
    """Only the down_proj of the chosen layers trains (their LoRA weights when adapters are used)."""
    layers = decoder_layers(model)
    chosen = {id(p) for i in layer_ids for p in layers[i].mlp.down_proj.parameters()}
    lora = any("lora_" in n for n, _ in model.named_parameters())
    for name, p in model.named_parameters():
        p.requires_grad_(id(p) in chosen and (not lora or "lora_" in name))


def hidden_at(model, batch, layer: int) -> torch.Tensor:
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], output_hidden_states=True)
    return out.hidden_states[layer + 1]  # hidden_states[0] is the embedding output


@procedure("rmu", RMUConfig, "RMU: steer forget activations to a random vector, keep retain activations")
def rmu(ctx: UnlearnContext, cfg: RMUConfig):
    model = ctx.lm.model
    layer, update = rmu_layers(len(decoder_layers(model)), cfg)
    ref = ctx.ref()  # frozen activations come from pi_ref, created before the trainable set changes
    restrict_trainable(model, update)
    gen = torch.Generator().manual_seed(ctx.schedule.seed)
    hidden = model.config.hidden_size if hasattr(model.config, "hidden_size") else model.get_base_model().config.hidden_size
    u = rmu_control_vector(hidden, 1.0 if cfg.c is None else cfg.c, gen).to(next(model.parameters()).device)

    def loss(m, b) -> LossOutput:
        if cfg.c is None:  # adaptive: beta * ||h_frozen|| per forget token, along the fixed unit direction u
            with ref.model() as frozen, torch.no_grad():
                norms = hidden_at(frozen, b.forget, layer).float().norm(dim=-1, keepdim=True)
            control = cfg.beta * norms * u
        else:
            control = u
        forget = masked_mse(hidden_at(m, b.forget, layer), control, b.forget["attention_mask"])
        with ref.model() as frozen:
            h_frozen = hidden_at(frozen, b.retain, layer)
        retain = masked_mse(hidden_at(m, b.retain, layer), h_frozen, b.retain["attention_mask"])
        return LossOutput(forget + cfg.alpha * retain, {"forget": forget.item(), "retain": retain.item()})

    sched = ctx.schedule if cfg.lr is None else dataclasses.replace(ctx.schedule, lr=cfg.lr)
    train(model, ctx.lm.tokenizer.pad_token_id, sched, forget=ctx.forget, retain=ctx.retain, loss_fn=loss, probe=ctx.probe)
    return ctx.lm
