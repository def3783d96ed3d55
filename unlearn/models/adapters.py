"""LoRA adapters (added, activated, merged) and the reference policy (adapters disabled, or one frozen copy when
there are no adapters)."""

from __future__ import annotations

import copy
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import torch

from unlearn.models.quant import is_peft, is_quantised, quant_compute_dtype


LORA_INIT_SEED = 0  # recorded in fine-tuning recipes (unlearn.train.finetuned_model_dir)


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters on every linear projection of the decoder (not the LM head)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0


def add_seeded_lora(model, spec: LoraSpec, *, quantised: bool, device: str):
    """``add_lora`` (gradient checkpointing on CUDA) with the adapters initialised from LORA_INIT_SEED alone,
    not from whatever the process drew before (measured: the same dry-run grad_ascent cell gave forget efficacy
    0.449, 0.399 and 0.422 after different earlier cells in the process, because the LoRA A matrices came from
    the global RNG's state at load time). The caller's RNG streams are left as they were. (LORA_INIT_SEED is
    fixed: --seed varies data order and method randomness, not the adapters' start.)"""
    with torch.random.fork_rng(devices=[torch.device(device).index or 0] if device.startswith("cuda") else []):
        torch.manual_seed(LORA_INIT_SEED)
        return add_lora(model, spec, quantised=quantised, gradient_checkpointing=device.startswith("cuda"))


def add_lora(model, spec: LoraSpec, *, quantised: bool = False, gradient_checkpointing: bool = False,
             adapter_name: str = "default"):
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantised:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
        compute = quant_compute_dtype(model)
        if compute in (torch.bfloat16, torch.float16):
            # prepare_model_for_kbit_training upcasts every non-quantised weight (embedding/tied head, norms) to
            # float32; frozen, they need no float32, and float32 norms make every 4-bit layer's input float32, so
            # bitsandbytes computes in float32: measured on Qwen3-4B's shape under a 10 GiB cap (docs/guide.md), activations and
            # logits twice the size (grad_diff/NPO/SimNPO ran out of memory) and 1.45 GiB of float32 embedding.
            for param in model.parameters():
                if param.dtype == torch.float32 and not param.requires_grad:
                    param.data = param.data.to(compute)
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules="all-linear",
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config, adapter_name=adapter_name)


def activate_adapters(model, adapters: list[str], trainable: str | None) -> None:
    """On a PEFT model with several LoRA adapters: make ``adapters`` active together (their deltas add up); only ``trainable``'s weights train."""
    model.base_model.set_adapter(adapters)
    for name, p in model.named_parameters():
        p.requires_grad_(trainable is not None and f".{trainable}." in name)


@contextmanager
def adapters_disabled(model):
    """``model.disable_adapter()`` with every parameter's ``requires_grad`` as it was: PEFT's exit re-enables the
    active adapters' gradients, which would undo a narrower trainable set (RMU trains a few layers' adapters)."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with model.disable_adapter():
            yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


class Reference:
    """π_ref for NPO/KL/RMU/TROU: the policy with adapters disabled, or one frozen copy without adapters.

    Never a second copy of a quantised base: a quantised model without adapters is refused.
    """

    def __init__(self, model):
        self.policy = model
        if is_peft(model):
            self.copy = None
        else:
            if is_quantised(model):
                raise ValueError("reference of a quantised model needs adapters (QLoRA); refusing a second 4-bit copy")
            self.copy = copy.deepcopy(model).eval().requires_grad_(False)

    @contextmanager
    def model(self):
        """Context in which the yielded network computes π_ref (no gradients)."""
        if self.copy is not None:
            with torch.no_grad():
                yield self.copy
            return
        ctx = adapters_disabled(self.policy) if self.policy.active_adapters else nullcontext()
        with torch.no_grad(), ctx:
            yield self.policy

    def __call__(self, **inputs):
        with self.model() as net:
            return net(**inputs)


@contextmanager
def idle_adapters_off(model):
    """The block runs with the LoRA adapters disabled when none has moved yet (every ``lora_B`` all zeros, as
    PEFT initialises them), else as it is. Such an adapter's branch adds exact zeros to each projection's output
    and to its input's gradient, so the numbers are the same without its per-layer work: the casts, two small
    products, a scale and an add on every projection (an IWAP round on the dry run's SmolLM2, bf16: 19 s -> 13 s,
    the same scores to the bit; docs/lab/measurements.md). Plain LoRA only: adapters with DoRA, their own biases or
    modules to save change the function without a moved ``lora_B``, so they stay on."""
    plain = is_peft(model) and all(not getattr(c, "use_dora", False) and getattr(c, "bias", "none") == "none"
                                   and not getattr(c, "modules_to_save", None) for c in model.peft_config.values())
    if not plain or any(bool(p.detach().any()) for n, p in model.named_parameters() if ".lora_B." in n):
        yield
        return
    with adapters_disabled(model):
        yield


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def merged_copy_for_save(model):
    """The model as plain weights to save (a target or gold becomes a plain model): LoRA merged into the base;
    a 4-bit (QLoRA) model is dequantised layer by layer on the CPU with its adapters merged (``dequantised_copy``:
    what the 4-bit model computes, up to the compute dtype's rounding of W + dW)."""
    if is_quantised(model):
        from unlearn.models.quant import dequantised_copy

        return dequantised_copy(model)
    if is_peft(model):
        return model.merge_and_unload()
    return model
