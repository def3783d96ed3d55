"""Unlearning methods: a registry of small units, each a frozen config plus a loss or a procedure.

A loss method is ``(model, batch, cfg, ref) -> LossOutput`` run by the shared training loop; a
procedure (retrain, dsu, iwap, trou) is ``(ctx, cfg) -> model``. Methods never read benchmark files:
they get forget/retain examples (and refusal answers) through an ``UnlearnContext``.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Callable

from unlearn.registry import PluginError, Registry, load_entry_points
from unlearn.train import LossOutput, StepBatch, TrainConfig, train

METHODS: Registry = Registry("method")
# The order tables list the built-in methods in; every other method (a new module here, or a plugin) follows,
# alphabetically. Adding a method does not need this list.
ORDER = ["retrain", "finetune", "grad_ascent", "grad_diff", "npo", "simnpo", "idk", "rmu", "dsu", "iwap", "trou"]
# Other packages register methods through this entry-point group: a module whose import registers them, e.g.
# [project.entry-points."unlearn.methods"] my_method = "my_package.my_method"
ENTRY_POINTS = "unlearn.methods"
NOT_METHODS = {"losses", "overrides"}  # modules of this package that hold shared code, not a method


@dataclass
class UnlearnContext:
    """What a method may use: the loaded target (model + tokenizer), tokenized forget/retain examples,
    forget questions, refusal answers, the shared schedule, and how to obtain the gold model."""

    lm: object  # unlearn.models.LoadedModel, already the target
    forget: list  # list[Example]
    retain: list  # list[Example]
    schedule: TrainConfig
    forget_questions: list[str] = field(default_factory=list)
    idk_answers: list[str] = field(default_factory=list)
    build_gold: Callable[[], object] | None = None  # returns a LoadedModel trained on retain only
    target_lr: float | None = None  # the learning rate the target was trained with (finetune continues at it)
    reference: object = None  # unlearn.models.Reference, created lazily
    probe: object = None  # unlearn.train.Probe: unlearning dynamics, measured along the run (None: not measured)

    def ref(self):
        if self.reference is None:
            from unlearn.models import Reference

            self.reference = Reference(self.lm.model)
        return self.reference


@dataclass(frozen=True)
class MethodSpec:
    name: str
    config_cls: type
    description: str
    run: Callable[[UnlearnContext, object], object]  # returns the unlearned LoadedModel


def loss_method(name: str, config_cls: type, description: str, needs_reference: bool = False):
    """Register ``fn(model, batch, cfg, ref) -> LossOutput`` as a method run by the shared loop."""

    def deco(fn):
        def run(ctx: UnlearnContext, cfg) -> object:
            ref = ctx.ref() if needs_reference else None
            train(ctx.lm.model, ctx.lm.tokenizer.pad_token_id, dataclasses.replace(ctx.schedule, desc=name),
                  forget=ctx.forget, retain=ctx.retain, loss_fn=lambda m, b: fn(m, b, cfg, ref), probe=ctx.probe)
            return ctx.lm

        METHODS.add(name, MethodSpec(name, config_cls, description, run))
        fn.method_name = name
        return fn

    return deco


def procedure(name: str, config_cls: type, description: str):
    """Register ``fn(ctx, cfg) -> LoadedModel`` (methods that are not a single loss)."""

    def deco(fn):
        METHODS.add(name, MethodSpec(name, config_cls, description, fn))
        return fn

    return deco


_LOADED = False


class MethodPluginError(PluginError):
    """A method module or plugin that fails to import; the message names it (a broken plugin is not skipped)."""


def _load_all() -> None:
    """Import every method module of this package (found by scanning it) and every module named in the
    ``unlearn.methods`` entry-point group; importing one registers its methods."""
    global _LOADED
    if _LOADED:
        return
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name not in NOT_METHODS and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    load_entry_points(ENTRY_POINTS, "method", MethodPluginError)
    _LOADED = True


def get_method(name: str) -> MethodSpec:
    _load_all()
    return METHODS.get(name)


def method_names() -> list[str]:
    """Registered methods: the built-ins in ``ORDER``, then any other alphabetically."""
    _load_all()
    rank = {m: i for i, m in enumerate(ORDER)}
    return sorted(METHODS.names(), key=lambda n: (rank.get(n, len(ORDER)), n))


# The values a config field may take, as (predicate, words): each method's config declares its own fields' rules
# in ``rules: ClassVar[dict]`` (a field without one is not checked); a field of another method with the same
# name does not lend its rule. None (where a field allows it) means "the default" and is not checked.
Rule = tuple[Callable[[float], bool], str]
POSITIVE: Rule = (lambda v: v > 0, "> 0")
NON_NEGATIVE: Rule = (lambda v: v >= 0, ">= 0")
COUNT: Rule = (lambda v: v >= 1, ">= 1")
OPEN_UNIT: Rule = (lambda v: 0 < v < 1, "in (0, 1)")
ABOVE_ONE: Rule = (lambda v: v > 1, "> 1")


def run_method(name: str, ctx: UnlearnContext, cfg=None):
    spec = get_method(name)
    return spec.run(ctx, cfg if cfg is not None else spec.config_cls())


__all__ = ["ABOVE_ONE", "COUNT", "METHODS", "NON_NEGATIVE", "OPEN_UNIT", "POSITIVE", "SCHEDULE_FIELDS", "SCHEDULE_RULES",
           "LossOutput", "Rule", "StepBatch", "UnlearnContext", "check_range", "get_method", "make_config", "method_names",
           "parse_overrides", "run_method", "schedule_overrides", "validate_overrides"]


# ``--set`` parsing and checking (unlearn/methods/overrides.py), re-exported: the names callers import from here
from unlearn.methods.overrides import (  # noqa: E402, I001  (after get_method, which it imports)
    SCHEDULE_FIELDS, SCHEDULE_RULES, check_range, make_config, parse_overrides, schedule_overrides, validate_overrides)
