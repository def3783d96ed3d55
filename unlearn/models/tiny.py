"""The ``tiny-qwen3`` preset: a Qwen3-architecture model of ~2M parameters and a byte-level BPE
tokenizer trained on the synthetic TOFU corpus; fully offline and deterministic."""

from __future__ import annotations

from pathlib import Path

import torch

from unlearn.cache import cached_artefact

TINY_VOCAB = 2048
TINY_SEED = 0
TINY_CONFIG = dict(hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4,
                   num_key_value_heads=2, head_dim=48, max_position_embeddings=512, rope_theta=10000.0,
                   tie_word_embeddings=True, rms_norm_eps=1e-6)
EOS, PAD = "<|endoftext|>", "<|pad|>"
RECIPE_VERSION = 1  # bump when the construction below changes


def train_tiny_tokenizer(vocab_size: int = TINY_VOCAB):
    """Byte-level BPE on the synthetic corpus: any UTF-8 text (real TOFU included) tokenizes, no UNK."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from unlearn.benchmarks.tofu.data import synthetic_corpus

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS, PAD], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(synthetic_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=PAD)


def build_tiny_qwen3(tokenizer, seed: int = TINY_SEED):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    config = Qwen3Config(vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None, **TINY_CONFIG)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)  # initialisation is part of the preset's identity
    try:
        model = Qwen3ForCausalLM(config)
    finally:
        torch.random.set_rng_state(gen_state)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def tiny_qwen3_dir() -> Path:
    def build(out: Path) -> None:
        tok = train_tiny_tokenizer()
        build_tiny_qwen3(tok).save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)

    recipe = {"preset": "tiny-qwen3", "version": RECIPE_VERSION, "config": TINY_CONFIG, "vocab": TINY_VOCAB,
              "seed": TINY_SEED}
    return cached_artefact("tiny-qwen3", recipe, build)
