"""Loading a model: the tokenizer, the dtype for the device, 4-bit NF4 quantisation and seeded LoRA adapters."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from unlearn.models.presets import explain_hub_error, resolve_model_source
from unlearn.models.adapters import LoraSpec, add_seeded_lora, is_peft


QUANT_CHOICES = (None, "4bit")


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    name: str
    quant: str | None
    lora: LoraSpec | None
    device: str

    @property
    def uses_adapters(self) -> bool:
        return self.lora is not None


def load_tokenizer(source, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
    except OSError as err:
        if isinstance(source, Path):
            raise
        raise explain_hub_error(str(source), err) from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # padding never carries loss, so any id is safe
    return tok


def default_dtype(device: str, quant: str | None, lora: LoraSpec | None) -> torch.dtype:
    """bf16 weights on CUDA when the base is frozen (LoRA or 4-bit: QLoRA's compute dtype); float32
    otherwise, because fully fine-tuned bf16 weights silently drop updates below their resolution (a full
    fine-tune on CUDA gets bf16 speed from autocast, ``TrainConfig.mixed_precision``)."""
    if device.startswith("cuda") and (quant or lora is not None):
        return torch.bfloat16
    return torch.float32




def load_model(name: str, *, quant: str | None = None, lora: LoraSpec | None = None, device: str = "cpu",
               trust_remote_code: bool = False, dtype: torch.dtype | None = None) -> LoadedModel:
    """Load ``name`` for training; ``quant='4bit'`` is NF4 (bitsandbytes), ``lora`` adds adapters."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    if quant not in QUANT_CHOICES:
        raise ValueError(f"unknown quantisation {quant!r}; valid: none, 4bit")
    if quant and lora is None:
        raise ValueError("a 4-bit base cannot be fully fine-tuned; give LoRA adapters (QLoRA)")
    source = resolve_model_source(name)
    compute = dtype or default_dtype(device, quant, lora)
    kwargs: dict = {"trust_remote_code": trust_remote_code, "use_safetensors": None, "dtype": compute}
    if quant == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute,
            bnb_4bit_use_double_quant=True)
        kwargs["device_map"] = {"": device}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except OSError as err:
        if isinstance(source, Path):
            raise
        raise explain_hub_error(name, err) from None
    if not quant:
        model.to(device)
    tok = load_tokenizer(source, trust_remote_code)
    if lora is not None:
        model = add_seeded_lora(model, lora, quantised=bool(quant), device=device)
    return LoadedModel(model, tok, name, quant, lora, device)


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder blocks of a Llama/Qwen-style causal LM, with or without a PEFT wrapper."""
    base = model.get_base_model() if is_peft(model) else model
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"cannot find decoder layers in {type(base).__name__} (expected .model.layers)")
    return layers
