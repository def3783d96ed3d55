"""``qwen3-4b-random``: the published Qwen3-4B architecture with random weights, for sizing the research target
(memory, throughput) on a machine with no network; it knows nothing, so its metric values mean nothing.

The shape is Qwen/Qwen3-4B's config.json (36 layers, hidden 2560, MLP 9728, 32 query / 8 key-value heads of
128, vocabulary 151,936, tied embeddings, rope theta 1e6). The tokenizer is tiny-qwen3's byte-level BPE (2,048
tokens, all ids inside the vocabulary): it splits English into about twice as many tokens as Qwen's own, so
sequences are longer than the real model's and memory figures err on the high side.
"""

from __future__ import annotations

from pathlib import Path

import torch

from unlearn.cache import cached_artefact

QWEN3_4B_CONFIG = dict(vocab_size=151936, hidden_size=2560, intermediate_size=9728, num_hidden_layers=36,
                       num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=40960,
                       rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True, attention_bias=False,
                       hidden_act="silu", initializer_range=0.02)
RANDOM_SEED = 0
RECIPE_VERSION = 1  # bump when the construction below changes


def build_random_model(config_kwargs: dict, tokenizer, seed: int = RANDOM_SEED, device: str | None = None):
    """A Qwen3 causal LM of the given shape with random bf16 weights, initialised on ``device`` (CUDA when
    present: a 4B model initialises in seconds there and in minutes on a CPU)."""
    from transformers import AutoModelForCausalLM, Qwen3Config

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    config = Qwen3Config(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
                         **config_kwargs)
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the vocabulary ({config.vocab_size})")
    forked = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=forked), torch.device(device):
        torch.manual_seed(seed)  # the weights are part of the preset's identity
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def random_model_dir(name: str, config_kwargs: dict, seed: int = RANDOM_SEED) -> Path:
    """Build once (cached by recipe) a folder holding a random model of ``config_kwargs``' shape."""
    from unlearn.models.tiny import train_tiny_tokenizer

    def build(out: Path) -> None:
        tok = train_tiny_tokenizer()
        model = build_random_model(config_kwargs, tok, seed)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        del model
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    recipe = {"preset": name, "version": RECIPE_VERSION, "config": config_kwargs, "seed": seed}
    return cached_artefact(name, recipe, build)
