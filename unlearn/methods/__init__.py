"""Unlearning methods: a registry of small units, each a frozen config plus a loss or a procedure.

A loss method is ``(model, batch, cfg, ref) -> LossOutput`` run by the shared training loop; a
procedure (retrain, dsu, iwap, trou) is ``(ctx, cfg) -> model``. Methods never read benchmark files:
they get forget/retain examples (and refusal answers) through an ``UnlearnContext``.
"""

from __future__ import annotations

import dataclasses
import importlib
import types
import typing
from dataclasses import dataclass, field
from typing import Callable

from unlearn.registry import Registry
from unlearn.train import LossOutput, StepBatch, TrainConfig, train

METHODS: Registry = Registry("method")
# The order tables list the built-in methods in; every other method (a new module here, or a plugin) follows,
# alphabetically. Adding a method does not need this list.
ORDER = ["retrain", "finetune", "grad_ascent", "grad_diff", "npo", "simnpo", "idk", "rmu", "dsu", "iwap", "trou"]
# Other packages register methods through this entry-point group: a module whose import registers them, e.g.
# [project.entry-points."unlearn.methods"] my_method = "my_package.my_method"
ENTRY_POINTS = "unlearn.methods"
NOT_METHODS = {"losses"}  # modules of this package that hold shared code, not a method


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


class MethodPluginError(RuntimeError):
    """A method module or plugin that fails to import; the message names it (a broken plugin is not skipped)."""


def _load_all() -> None:
    """Import every method module of this package (found by scanning it) and every module named in the
    ``unlearn.methods`` entry-point group; importing one registers its methods."""
    global _LOADED
    if _LOADED:
        return
    import pkgutil
    from importlib import metadata

    for info in pkgutil.iter_modules(__path__):
        if info.name not in NOT_METHODS and not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")
    for ep in metadata.entry_points(group=ENTRY_POINTS):
        try:
            ep.load()
        except Exception as err:  # noqa: BLE001  (any failure of a third party's import is reported by name)
            raise MethodPluginError(f"method plugin {ep.name!r} ({ep.value}, entry point group {ENTRY_POINTS!r}) "
                                    f"failed to load: {type(err).__name__}: {err}") from err
    _LOADED = True


def get_method(name: str) -> MethodSpec:
    _load_all()
    return METHODS.get(name)


def method_names() -> list[str]:
    """Registered methods: the built-ins in ``ORDER``, then any other alphabetically."""
    _load_all()
    rank = {m: i for i, m in enumerate(ORDER)}
    return sorted(METHODS.names(), key=lambda n: (rank.get(n, len(ORDER)), n))


def _coerce(value: str, hint, where: str):
    """Read a CLI string as the field's type (int, float, str, bool, or Optional of one)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if value.lower() == "none" and type(None) in options:
        return None
    for t in options:
        try:
            if t is bool:
                if value.lower() in ("true", "1", "yes"):
                    return True
                if value.lower() in ("false", "0", "no"):
                    return False
                raise ValueError
            if t in (int, float, str):
                return t(value)
        except ValueError:
            continue
    raise ValueError(f"{where}: cannot read {value!r} as {hint}")


def parse_overrides(items: list[str] | None) -> dict[str, dict[str, str]]:
    """``["npo.beta=0.2", ...]`` -> {"npo": {"beta": "0.2"}}; malformed items raise with the item."""
    out: dict[str, dict[str, str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        method, dot, fld = key.partition(".")
        if not sep or not dot or not method or not fld:
            raise ValueError(f"override {item!r} is not of the form method.field=value (e.g. npo.beta=0.2)")
        out.setdefault(method.strip(), {})[fld.strip()] = value.strip()
    return out


# Fields of the shared unlearning schedule that a method override may set (``--set npo.lr=1e-4``), for
# methods whose own config has no field of that name (finetune's and rmu's own lr/epochs win).
SCHEDULE_FIELDS: dict[str, type] = {"lr": float, "epochs": float}


# The values a field may take, by name, wherever it appears (a method's config or the shared schedule); None
# (where a field allows it) means "the default" and is not checked.
_POSITIVE = (lambda v: v > 0, "> 0")
_COUNT = (lambda v: v >= 1, ">= 1")
FIELD_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": _POSITIVE, "forget_lr": _POSITIVE, "epochs": _POSITIVE, "forget_epochs": _POSITIVE, "matched_epochs": _POSITIVE,
    "beta": _POSITIVE,  # an inverse temperature (NPO, SimNPO, TROU) or RMU's scale
    "alpha": (lambda v: v >= 0, ">= 0"), "delta": _POSITIVE,
    "p": (lambda v: 0 < v < 1, "in (0, 1)"), "p_heads": (lambda v: 0 < v < 1, "in (0, 1)"),
    "grow": (lambda v: v > 1, "> 1"),
    "rank": _COUNT, "rounds": _COUNT, "probe_size": _COUNT, "k_retain": _COUNT, "n_update_layers": _COUNT,
}


def check_range(label: str, key: str, value):
    """``value`` if FIELD_RULES allows it for ``key``; else a ValueError naming ``label`` and the valid range."""
    rule = FIELD_RULES.get(key)
    if rule is not None and value is not None and not isinstance(value, (str, bool)) and not rule[0](value):
        raise ValueError(f"{label}={value}: must be {rule[1]}")
    return value


def _config_fields(name: str) -> dict:
    return {f.name: f for f in dataclasses.fields(get_method(name).config_cls)}


def schedule_overrides(name: str, overrides: dict[str, dict[str, str]] | None = None) -> dict[str, float]:
    """The shared-schedule changes ``overrides[name]`` asks for (``lr``, ``epochs``), typed."""
    own = _config_fields(name)
    return {k: check_range(f"{name}.{k}", k, _coerce(v, SCHEDULE_FIELDS[k], f"{name}.{k}"))
            for k, v in (overrides or {}).get(name, {}).items() if k in SCHEDULE_FIELDS and k not in own}


def validate_overrides(overrides: dict[str, dict[str, str]]) -> None:
    """Check every method and field named in overrides exists (before any work starts)."""
    for method in overrides:
        make_config(method, overrides)
        schedule_overrides(method, overrides)


def make_config(name: str, overrides: dict[str, dict[str, str]] | None = None):
    """The method's frozen config with ``overrides[name]`` applied (typed from the dataclass)."""
    spec = get_method(name)
    fields = _config_fields(name)
    hints = typing.get_type_hints(spec.config_cls)  # resolves string annotations (from __future__)
    changes = {}
    for key, value in (overrides or {}).get(name, {}).items():
        if key in SCHEDULE_FIELDS and key not in fields:
            continue  # the shared schedule's field (schedule_overrides)
        if key not in fields:
            valid = ", ".join(list(fields) + [f"{k} (the shared schedule's)" for k in SCHEDULE_FIELDS if k not in fields])
            raise KeyError(f"unknown field {key!r} for method {name!r}; valid fields: {valid}")
        changes[key] = check_range(f"{name}.{key}", key, _coerce(value, hints[key], f"{name}.{key}"))
    return dataclasses.replace(spec.config_cls(), **changes)


def run_method(name: str, ctx: UnlearnContext, cfg=None):
    spec = get_method(name)
    return spec.run(ctx, cfg if cfg is not None else spec.config_cls())


__all__ = ["METHODS", "LossOutput", "StepBatch", "UnlearnContext", "get_method", "make_config", "method_names",
           "parse_overrides", "run_method", "schedule_overrides", "validate_overrides"]
