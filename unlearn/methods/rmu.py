"""Representation Misdirection for Unlearning (Li et al. 2024, WMDP, arXiv:2403.03218)."""

from dataclasses import dataclass

import torch

from unlearn.methods import UnlearnContext, procedure
from unlearn.methods.losses import masked_mse, rmu_control_vector
from unlearn.models import decoder_layers
from unlearn.train import LossOutput, train


@dataclass(frozen=True)
class RMUConfig:
    c: float = 6.5  # steering coefficient: norm of the control vector
    alpha: float = 1200.0  # weight of the retain activation-matching loss (7B scale)
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
    control = rmu_control_vector(hidden, cfg.c, gen).to(next(model.parameters()).device)

    def loss(m, b) -> LossOutput:
        forget = masked_mse(hidden_at(m, b.forget, layer), control, b.forget["attention_mask"])
        with ref.model() as frozen:
            h_frozen = hidden_at(frozen, b.retain, layer)
        retain = masked_mse(hidden_at(m, b.retain, layer), h_frozen, b.retain["attention_mask"])
        return LossOutput(forget + cfg.alpha * retain, {"forget": forget.item(), "retain": retain.item()})

    train(model, ctx.lm.tokenizer.pad_token_id, ctx.schedule, forget=ctx.forget, retain=ctx.retain, loss_fn=loss)
    return ctx.lm
