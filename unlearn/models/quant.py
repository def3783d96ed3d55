"""What kind of model this is (4-bit NF4, PEFT-wrapped), the 4-bit compute dtype, and a dequantised full-precision
copy."""

from __future__ import annotations

import copy

import torch



def is_peft(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def quant_compute_dtype(model) -> torch.dtype | None:
    """The 4-bit layers' compute dtype as loaded (``bnb_4bit_compute_dtype``), None for an unquantised model."""
    base = model.get_base_model() if is_peft(model) else model
    qc = getattr(base.config, "quantization_config", None)
    compute = qc.get("bnb_4bit_compute_dtype") if isinstance(qc, dict) else getattr(qc, "bnb_4bit_compute_dtype", None)
    if isinstance(compute, str):
        compute = getattr(torch, compute.removeprefix("torch."), None)
    return compute


def is_quantised(model) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(getattr(model, "base_model", None),
                                                                       "is_loaded_in_4bit", False))


def _is_4bit_linear(module) -> bool:
    return type(module).__name__ == "Linear4bit" and hasattr(getattr(module, "weight", None), "quant_state")


def dequantised_copy(model, dtype: torch.dtype | None = None, device: str = "cpu"):
    """A plain, unquantised copy of a 4-bit model (on ``device``, in ``dtype``): every NF4 weight dequantised,
    the active LoRA adapters merged into it at their current scaling (DSU's signed ones included), everything
    else copied. The copy computes what the 4-bit model computes up to ``dtype``'s rounding of W + dW; it is
    built one layer at a time, so the accelerator never holds a second full-precision model.
    ``dtype`` defaults to the 4-bit layers' configured compute dtype (bf16 on CUDA, float32 on CPU; bitsandbytes
    switches a layer's own ``compute_dtype`` to its input's, which exported a 4B model in float32: 15 GiB)."""
    import bitsandbytes.functional as bnbf
    from transformers import AutoModelForCausalLM

    base = model.get_base_model() if is_peft(model) else model
    modules = dict(base.named_modules())
    quantised = [m for m in modules.values() if _is_4bit_linear(m)]
    if not quantised:
        raise ValueError("dequantised_copy needs a 4-bit model; this one has no 4-bit layers")
    dtype = dtype or quant_compute_dtype(model) or torch.float32
    config = copy.deepcopy(base.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.device("meta"):
        plain = AutoModelForCausalLM.from_config(config, dtype=dtype)
    source = dict(base.named_parameters(remove_duplicate=False))
    source.update(dict(base.named_buffers(remove_duplicate=False)))
    state = {}
    with torch.no_grad():
        for key in plain.state_dict(keep_vars=True):
            owner, _, leaf = key.rpartition(".")
            mod = modules.get(owner)
            lora = mod is not None and hasattr(mod, "base_layer") and hasattr(mod, "lora_A")
            inner = mod.base_layer if lora else mod
            if leaf == "weight" and inner is not None and _is_4bit_linear(inner):
                if getattr(inner.weight.quant_state, "packing_format_for_cpu", False):
                    # bitsandbytes repacks NF4 weights for its bf16 CPU kernel at the first inference forward on
                    # CPUs with AVX512-bf16; undo it as its own state-dict save does (the next forward repacks)
                    inner.weight.data, inner.weight.quant_state = bnbf._convert_weight_packed_for_cpu_inverse(
                        inner.weight.data, inner.weight.quant_state)
                w = bnbf.dequantize_4bit(inner.weight.data, inner.weight.quant_state).float()
                if lora and not getattr(mod, "disable_adapters", False):
                    for name in mod.active_adapters:
                        if name in mod.lora_A:
                            w = w + mod.get_delta_weight(name).float()
                state[key] = w.to(device, dtype)
                continue
            src = source.get(f"{owner}.base_layer.{leaf}" if lora else key)
            if src is None:
                continue  # a tied weight: tie_weights() below restores it
            state[key] = src.detach().to(device, dtype if src.is_floating_point() else src.dtype).clone()
    missing = plain.load_state_dict(state, strict=False, assign=True).missing_keys
    plain.tie_weights()
    for name, buf in list(plain.named_buffers()):  # non-persistent buffers (rotary inv_freq) are not in state_dict
        if buf.is_meta:
            owner, _, leaf = name.rpartition(".")
            plain.get_submodule(owner).register_buffer(leaf, source[name].detach().to(device).clone(), persistent=False)
    untied = [k for k in missing if k != "lm_head.weight" or not config.tie_word_embeddings]
    if untied:
        raise RuntimeError(f"dequantised_copy: no source for {untied[:5]} ({len(untied)} in all)")
    plain.generation_config = copy.deepcopy(base.generation_config)
    return plain.eval()
