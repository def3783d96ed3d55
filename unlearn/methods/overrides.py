"""``--set method.field=value``: parsing the items, typing each value from the method's config, and checking it
against the rules its config declares (``rules``) or, for the shared schedule's fields, ``SCHEDULE_RULES``."""

from __future__ import annotations

import dataclasses
import types
import typing

from unlearn.methods import POSITIVE, Rule, get_method


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


# The shared schedule's rules (a method's own fields follow its config's ``rules``)
SCHEDULE_RULES: dict[str, Rule] = {"lr": POSITIVE, "epochs": POSITIVE}


def check_range(label: str, rule: Rule | None, value):
    """``value`` if ``rule`` allows it (no rule, None, a string or a bool: not checked); else a ValueError naming
    ``label`` and the valid range."""
    if rule is not None and value is not None and not isinstance(value, (str, bool)) and not rule[0](value):
        raise ValueError(f"{label}={value}: must be {rule[1]}")
    return value


def config_rules(name: str) -> dict[str, Rule]:
    """The rules method ``name``'s config declares for its own fields."""
    return dict(getattr(get_method(name).config_cls, "rules", {}))


def _config_fields(name: str) -> dict:
    return {f.name: f for f in dataclasses.fields(get_method(name).config_cls)}


def schedule_overrides(name: str, overrides: dict[str, dict[str, str]] | None = None) -> dict[str, float]:
    """The shared-schedule changes ``overrides[name]`` asks for (``lr``, ``epochs``), typed."""
    own = _config_fields(name)
    return {k: check_range(f"{name}.{k}", SCHEDULE_RULES[k], _coerce(v, SCHEDULE_FIELDS[k], f"{name}.{k}"))
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
    rules = config_rules(name)
    changes = {}
    for key, value in (overrides or {}).get(name, {}).items():
        if key in SCHEDULE_FIELDS and key not in fields:
            continue  # the shared schedule's field (schedule_overrides)
        if key not in fields:
            valid = ", ".join(list(fields) + [f"{k} (the shared schedule's)" for k in SCHEDULE_FIELDS if k not in fields])
            raise KeyError(f"unknown field {key!r} for method {name!r}; valid fields: {valid}")
        changes[key] = check_range(f"{name}.{key}", rules.get(key), _coerce(value, hints[key], f"{name}.{key}"))
    return dataclasses.replace(spec.config_cls(), **changes)
