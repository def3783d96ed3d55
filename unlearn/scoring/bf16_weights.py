"""bf16 copies of a model's frozen float32 linear weights, for passes under CPU bf16 autocast."""

from __future__ import annotations

from contextlib import contextmanager

import torch


class FrozenWeightsBf16:
    """bf16 copies of a model's frozen float32 linear weights, swapped in (``on``) for bf16-autocast passes and
    out (``off``) for anything else. Autocast casts such a weight on every call (its cast cache keeps only leaves
    that require a gradient); a copy made once holds the same rounded values, so the products are the same and
    the casts are gone. LoRA adapters' weights, frozen or not, keep their dtype: PEFT casts an adapter's input to
    it, which would round the gradient flowing back through that input. The copies are made at ``on`` and last
    while the frozen weights do not change (one training loop, one generation call); an ``on`` inside another's
    life (a probe's scoring between two training steps) takes the copies it finds and ``drop`` frees only the
    ones it made. ``enabled`` False: both are no-ops."""

    def __init__(self, model, enabled: bool):
        self.model, self.enabled, self.swapped, self.made = model, enabled, [], []

    def on(self) -> None:
        if not self.enabled or self.swapped:
            return
        for name, mod in self.model.named_modules():
            if ".lora_" in f".{name}":  # an adapter's weights: PEFT casts its input to their dtype, so they stay
                continue
            if isinstance(mod, torch.nn.Linear) and not mod.weight.requires_grad and mod.weight.dtype == torch.float32:
                if mod.bias is not None and (mod.bias.requires_grad or mod.bias.dtype != torch.float32):
                    continue
                saved = (mod.weight, mod.bias)
                if not hasattr(mod, "_bf16_copies"):
                    self.made.append(mod)
                    mod._bf16_copies = tuple(None if t is None else torch.nn.Parameter(t.detach().to(torch.bfloat16),
                                                                                     requires_grad=False)
                                             for t in saved)
                mod.weight, mod.bias = mod._bf16_copies
                self.swapped.append((mod, saved))

    def off(self) -> None:
        for mod, (weight, bias) in self.swapped:
            mod.weight, mod.bias = weight, bias
        self.swapped = []

    def drop(self) -> None:
        """``off``, and the copies this object made freed (the frozen weights may change from here)."""
        self.off()
        for mod in self.made:
            if hasattr(mod, "_bf16_copies"):
                del mod._bf16_copies
        self.made = []


@contextmanager
def bf16_weights_under_autocast(model):
    """``FrozenWeightsBf16`` on for the block when CPU bf16 autocast is active around it (no-op otherwise): the
    same products as autocast's own casts (generation stays token for token the same), without a cast per call."""
    active = torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    frozen = FrozenWeightsBf16(model, active and next(model.parameters()).device.type == "cpu")
    frozen.on()
    try:
        yield
    finally:
        frozen.drop()
