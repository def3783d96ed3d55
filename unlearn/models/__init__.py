"""Models: presets, hub ids and local folders (``presets``); loading with 4-bit NF4 quantisation and seeded LoRA
(``loading``); LoRA adapters and the reference policy (``adapters``); what kind of model this is and the 4-bit
helpers (``quant``). The names every caller uses are importable from here."""

from unlearn.models.adapters import (LORA_INIT_SEED, LoraSpec, Reference, activate_adapters, add_lora, add_seeded_lora,
                                     idle_adapters_off, merged_copy_for_save, trainable_parameters)
from unlearn.models.loading import QUANT_CHOICES, LoadedModel, decoder_layers, default_dtype, load_model, load_tokenizer
from unlearn.models.presets import (PRESETS, SMOLLM2_GGUF, SMOLLM2_INSTALL, ModelUnavailable, explain_hub_error,
                                    qwen3_4b_random_dir, resolve_model_source, smollm2_dir, tiny_qwen3_dir)
from unlearn.models.quant import dequantised_copy, is_peft, is_quantised, quant_compute_dtype

__all__ = ["LORA_INIT_SEED", "PRESETS", "QUANT_CHOICES", "SMOLLM2_GGUF", "SMOLLM2_INSTALL", "LoadedModel", "LoraSpec",
           "ModelUnavailable", "Reference", "activate_adapters", "add_lora", "add_seeded_lora", "decoder_layers",
           "default_dtype", "dequantised_copy", "explain_hub_error", "idle_adapters_off", "is_peft", "is_quantised",
           "load_model", "load_tokenizer", "merged_copy_for_save", "qwen3_4b_random_dir", "quant_compute_dtype",
           "resolve_model_source", "smollm2_dir", "tiny_qwen3_dir", "trainable_parameters"]
