"""IWAP, Influence-Guided Weight Atom Pruning (this project; see METHODS.md): zero the MLP neurons (and
optionally query heads) whose first-order influence on the forget loss is largest relative to retain."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from unlearn.methods import UnlearnContext, procedure
from unlearn.methods.losses import influence_ratio, top_fraction
from unlearn.models import decoder_layers, is_peft, is_quantised
from unlearn.scoring import collate, mean_nll
from unlearn.train import nll_loss, train


@dataclass(frozen=True)
class IWAPConfig:
    p: float = 0.01  # fraction of MLP neurons pruned (top scores)
    heads: bool = False  # also score and prune attention query heads
    p_heads: float = 0.01  # fraction of query heads pruned when heads=True
    eps: float = 1e-8  # relative to the mean retain influence
    repair_steps: int = 0  # optional retain NLL steps after pruning
    max_batches: int | None = None  # influence batches per split (None: all forget batches, as many retain)


def _base(mod):
    return getattr(mod, "base_layer", mod)  # a LoRA wrapper's frozen base linear


def atom_influence(model, batches: list[dict], heads: bool, loss_fn=mean_nll) -> dict[str, torch.Tensor]:
    """I(a) = mean over batches of |sum_{w in a} w * dL/dw| for every MLP neuron (and query head).

    For y = x W^T, sum_k W_jk dL/dW_jk = sum_t y_tj dL/dy_tj (row j) and sum_i W_ij dL/dW_ij =
    sum_t x_tj dL/dx_tj (column j); so the sums come from activations and their gradients, which also
    holds for 4-bit layers (the dequantised weights) without any weight gradient.
    """
    layers = decoder_layers(model)
    n_heads = model.config.num_attention_heads if hasattr(model.config, "num_attention_heads") else None
    captured: dict[tuple, torch.Tensor] = {}
    handles = []
    for i, layer in enumerate(layers):
        mlp, attn = layer.mlp, layer.self_attn
        for key, mod in (("gate", mlp.gate_proj), ("up", mlp.up_proj)) + ((("q", attn.q_proj),) if heads else ()):
            handles.append(_base(mod).register_forward_hook(lambda m, a, out, k=(key, i): captured.__setitem__(k, out)))
        for key, mod in (("down", mlp.down_proj),) + ((("o", attn.o_proj),) if heads else ()):
            handles.append(mod.register_forward_pre_hook(lambda m, a, k=(key, i): captured.__setitem__(k, a[0])))
    embed = model.get_input_embeddings()
    # Frozen weights give activations without a graph; make the embedding output require grad instead.
    handles.append(embed.register_forward_hook(lambda m, a, out: out.requires_grad_(True)))
    totals: dict[str, torch.Tensor] = {}
    try:
        for batch in batches:
            captured.clear()
            loss = loss_fn(model, batch)
            keys = list(captured)
            grads = torch.autograd.grad(loss, [captured[k] for k in keys])
            per = {k: (captured[k].detach().float() * g.float()).sum(dim=(0, 1)) for k, g in zip(keys, grads)}
            mlp = torch.stack([per[("gate", i)] + per[("up", i)] + per[("down", i)] for i in range(len(layers))])
            out = {"mlp": mlp.abs()}
            if heads:
                hs = torch.stack([per[("q", i)] + per[("o", i)] for i in range(len(layers))])
                out["heads"] = hs.view(len(layers), n_heads, -1).sum(-1).abs()
            for k, v in out.items():
                totals[k] = totals.get(k, 0) + v
    finally:
        for h in handles:
            h.remove()
    return {k: v / max(len(batches), 1) for k, v in totals.items()}


def select(scores: torch.Tensor, p: float) -> list[tuple[int, int]]:
    """(layer, atom) pairs of the top ceil(p * N) scores over all layers."""
    flat = top_fraction(scores.flatten(), p)
    width = scores.shape[1]
    return [(int(i) // width, int(i) % width) for i in flat]


def install_masks(model, pruned_mlp, pruned_heads=()) -> list:
    """Zero the pruned atoms' outputs with forward pre-hooks (works on quantised weights)."""
    layers = decoder_layers(model)
    handles = []
    by_layer: dict[tuple[str, int], list[int]] = {}
    for kind, atoms in (("mlp", pruned_mlp), ("heads", pruned_heads)):
        for layer, j in atoms:
            by_layer.setdefault((kind, layer), []).append(j)
    for (kind, layer), idx in by_layer.items():
        mod = layers[layer].mlp.down_proj if kind == "mlp" else layers[layer].self_attn.o_proj
        width = mod.in_features if hasattr(mod, "in_features") else _base(mod).in_features
        mask = torch.ones(width)
        head_dim = 1 if kind == "mlp" else width // model.config.num_attention_heads
        for j in idx:
            mask[j * head_dim:(j + 1) * head_dim] = 0
        handles.append(mod.register_forward_pre_hook(lambda m, a, mk=mask: (a[0] * mk.to(a[0].device, a[0].dtype),) + a[1:]))
    return handles


@torch.no_grad()
def merge_masks(model, pruned_mlp, pruned_heads=()) -> None:
    """Full precision, no adapters: zero the atoms' weights (gate/up rows, down column; q rows, o columns)."""
    layers = decoder_layers(model)
    for layer, j in pruned_mlp:
        mlp = layers[layer].mlp
        mlp.gate_proj.weight[j] = 0
        mlp.up_proj.weight[j] = 0
        mlp.down_proj.weight[:, j] = 0
    hd = model.config.hidden_size // model.config.num_attention_heads
    hd = getattr(model.config, "head_dim", None) or hd
    for layer, h in pruned_heads:
        attn = layers[layer].self_attn
        attn.q_proj.weight[h * hd:(h + 1) * hd] = 0
        if attn.q_proj.bias is not None:
            attn.q_proj.bias[h * hd:(h + 1) * hd] = 0
        attn.o_proj.weight[:, h * hd:(h + 1) * hd] = 0


def influence_batches(ctx: UnlearnContext, cfg: IWAPConfig):
    tok, bs = ctx.lm.tokenizer, ctx.schedule.batch_size
    device = next(ctx.lm.model.parameters()).device
    f = [collate(ctx.forget[i:i + bs], tok.pad_token_id, device) for i in range(0, len(ctx.forget), bs)]
    r = [collate(ctx.retain[i:i + bs], tok.pad_token_id, device) for i in range(0, len(ctx.retain), bs)]
    n = cfg.max_batches or len(f)
    return f[:n], r[:n]


@procedure("iwap", IWAPConfig, "IWAP: prune the MLP neurons most influential on forget relative to retain (no training loop)")
def iwap(ctx: UnlearnContext, cfg: IWAPConfig):
    model = ctx.lm.model
    fb, rb = influence_batches(ctx, cfg)
    inf_f, inf_r = atom_influence(model, fb, cfg.heads), atom_influence(model, rb, cfg.heads)
    pruned = select(influence_ratio(inf_f["mlp"], inf_r["mlp"], cfg.eps), cfg.p)
    heads = select(influence_ratio(inf_f["heads"], inf_r["heads"], cfg.eps), cfg.p_heads) if cfg.heads else []
    if is_peft(model) or is_quantised(model):
        model._iwap_hooks = install_masks(model, pruned, heads)
    else:
        merge_masks(model, pruned, heads)
    model._iwap_pruned = {"mlp": pruned, "heads": heads}
    if cfg.repair_steps > 0:
        train(model, ctx.lm.tokenizer.pad_token_id,
              dataclasses.replace(ctx.schedule, epochs=1e9, max_steps=cfg.repair_steps, desc="iwap:repair"),
              retain=ctx.retain, loss_fn=nll_loss)
        if not (is_peft(model) or is_quantised(model)):
            merge_masks(model, pruned, heads)  # repair must not revive pruned atoms
    return ctx.lm
