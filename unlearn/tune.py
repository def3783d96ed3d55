"""``unlearn tune``: one declared tuning procedure for every method.

Each method gets a small grid (lr x epochs of the shared schedule where they matter, plus the method's
main knob). Every setting unlearns the benchmark's tuning split (TOFU's ``tune``: authors in no evaluated
forget set, with their own target and gold) and is evaluated like any cell. The rule, the same for all methods:

1. keep the settings whose retain performance is at least ``retain_min`` (0.9);
2. among them, the highest forget efficacy (compared to 3 decimals);
3. ties go to the cheaper setting: fewer tokens through the model while unlearning (``cost.tokens``,
   deterministic), then the higher retain performance, then the grid's order.

When no setting meets the retain bound the method keeps its defaults, and the file says so. The chosen
settings are applied unchanged to the other splits and benchmarks (``unlearn bench --tuned FILE``), and
every trial is written to the output file as soon as it finishes: an interrupted run resumes there.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

from unlearn.methods import make_config, method_names, schedule_overrides
from unlearn.cache import atomic_write

RULE = ("highest forget efficacy (3 decimals) with retain performance >= {retain_min}; ties: fewer unlearning "
        "tokens, then higher retain performance, then grid order; none meets the bound: the method's defaults")
# finetune is the "must not forget" baseline and retrain the gold model: tuning them for forgetting is meaningless
NOT_TUNED = ("finetune", "retrain")


def default_grids() -> dict[str, dict[str, list[str]]]:
    """Each registered method's grid, declared beside its config (``tune_grid``), so a method added in another
    file or package brings its own. Values are strings as on the command line (--set method.field=value);
    ``lr`` and ``epochs`` are the shared schedule's unless the method has its own field of that name; "{k}x"
    values are multiples of the tier's shared unlearning lr, so one grid serves every tier."""
    from unlearn.methods import get_method, method_names

    grids = {m: getattr(get_method(m).config_cls, "tune_grid", None) for m in method_names() if m not in NOT_TUNED}
    return {m: dict(g) for m, g in grids.items() if g}


def resolve_multiple(value: str, base_lr: float) -> str:
    """``value`` with an "Nx" (N times the tier's shared unlearning lr) resolved against ``base_lr``; any other
    value as it is."""
    return f"{float(value[:-1]) * base_lr:.6g}" if value.endswith("x") else value


def grid_settings(grid: dict[str, list[str]], base_lr: float) -> list[dict[str, str]]:
    """The grid's settings in declared order (last field fastest), "Nx" values resolved against base_lr."""
    keys = list(grid)
    return [{k: resolve_multiple(v, base_lr) for k, v in zip(keys, combo)}
            for combo in itertools.product(*(grid[k] for k in keys))]


def choose(trials: list[dict], retain_min: float = 0.9) -> dict | None:
    """The RULE over trials ({settings, forget_efficacy, retain_performance, tokens}, in grid order)."""
    ok = [(i, t) for i, t in enumerate(trials) if t["retain_performance"] >= retain_min]
    if not ok:
        return None
    best = max(round(t["forget_efficacy"], 3) for _, t in ok)
    tied = [(i, t) for i, t in ok if round(t["forget_efficacy"], 3) == best]
    return min(tied, key=lambda it: (it[1]["tokens"], -it[1]["retain_performance"], it[0]))[1]


def load_grids(path: str | None) -> dict[str, dict[str, list[str]]]:
    """default_grids(), or a JSON file {method: {field: [values]}} (every method and field checked)."""
    if path is None:
        return default_grids()
    try:
        grids = json.loads(Path(path).read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not JSON ({err})") from None
    if not isinstance(grids, dict):
        raise ValueError(f"{path}: expected an object {{method: {{field: [values]}}}}")
    for method, grid in grids.items():
        if not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values()):
            raise ValueError(f"{path}: {method}: expected {{field: [values, ...]}} with at least one value per field")
        probe = {method: {k: str(v[0]).rstrip("x") if str(v[0]).endswith("x") else str(v[0]) for k, v in grid.items()}}
        try:
            make_config(method, probe)  # unknown method or field: KeyError naming it
            schedule_overrides(method, probe)
        except KeyError as err:
            raise KeyError(f"{path}: {err.args[0] if err.args else err}") from None
    return {m: {k: [str(x) for x in v] for k, v in g.items()} for m, g in grids.items()}


def choices_path(out: str | Path) -> Path:
    """Where the chosen settings of the trial log ``out`` go: ``tuning.json`` -> ``tuning.chosen.json``."""
    out = Path(out)
    return out.with_name(out.stem + ".chosen" + out.suffix)


def choices(result: dict) -> dict:
    """A tuning result without its trials: the rule, the identity of the tuning run and, per method, the chosen
    settings with the trial that chose them. What a tier commits (``unlearn/data/tuned/<tier>.json``); the trial
    log stays where the run wrote it."""
    return {"rule": result["rule"], "retain_min": result["retain_min"], "identity": result["identity"],
            "methods": {m: {"chosen": e.get("chosen"), "chosen_result": e.get("chosen_result")}
                        for m, e in result["methods"].items()}}


def tune_set(bench, split: str) -> dict:
    """What the tuning forgets, for the tuned file: the split, its data identity and, per evaluated split, how
    many of its forget rows (question and answer) that split's forget set holds too (0 everywhere: out of sample)."""
    ident = {"split": split, "data": bench.identity(split)}
    if hasattr(bench, "data"):
        rows = lambda s: {(r.question, r.answer) for r in bench.data(s).forget}  # noqa: E731
        ident["evaluated_forget_overlap"] = {s: len(rows(split) & rows(s)) for s in bench.splits}
    return ident


def run_tune(bench, methods: list[str] | None = None, split: str | None = None, grids: dict | None = None,
             retain_min: float = 0.9, out: str | Path = "outputs/tuning.json", log=print) -> dict:
    """Run every method's grid on ``split`` of ``bench`` (a benchmark object; default its ``tune_split``); write
    every trial to ``out`` (the trial log, resumable) and the chosen settings alone to :func:`choices_path` of it."""
    split = split or bench.tune_split
    grids = grids or default_grids()
    methods = methods or [m for m in method_names() if m not in NOT_TUNED and m in grids]  # a --grid file: its methods
    for m in methods:
        if m not in grids:
            raise KeyError(f"no tuning grid for method {m!r}; grids: {', '.join(grids)}")
    out = Path(out)
    ident = {"model": bench.model, **tune_set(bench, split), "precision": bench.precision,
             "protocol": bench.profile.protocol.name, "unlearn_lr": bench.profile.unlearn.lr}
    result = {"rule": RULE.format(retain_min=retain_min), "retain_min": retain_min, "identity": ident, "methods": {}}
    if out.is_file():  # resume: keep the trials of an earlier run with the same identity
        old = json.loads(out.read_text())
        if old.get("identity") == ident and old.get("retain_min") == retain_min:
            result["methods"] = old.get("methods", {})
            log(f"resuming {out}: {sum(len(v['trials']) for v in result['methods'].values())} trials done")
    start = time.time()
    for method in methods:
        settings = grid_settings(grids[method], bench.profile.unlearn.lr)
        entry = result["methods"].setdefault(method, {"trials": []})
        entry["grid"] = grids[method]  # this run's grid (a resumed file may hold an older one)
        done = {json.dumps(t["settings"], sort_keys=True): t for t in entry["trials"]}
        trials = []
        for i, s in enumerate(settings, 1):
            key = json.dumps(s, sort_keys=True)
            if key not in done:
                cell = bench.run_cell(method, split, {method: s})
                done[key] = {"settings": s, "forget_efficacy": cell["summary"]["forget_efficacy"],
                             "retain_performance": cell["summary"]["retain_performance"],
                             "forget_quality": cell["metrics"]["forget_quality"], "tokens": cell["cost"]["tokens"],
                             "unlearn_s": cell["cost"]["unlearn_s"],
                             "method_stats": {k: v for k, v in (cell.get("method_stats") or {}).items() if k != "history"}}
                log(f"{method} {i}/{len(settings)} {s}: efficacy {done[key]['forget_efficacy']:.3f}, retain "
                    f"{done[key]['retain_performance']:.3f}, {done[key]['tokens']} tokens")
            trials.append(done[key])
            entry["trials"] = list(done.values())  # on file after every trial, earlier runs' included
            atomic_write(out, json.dumps(result, indent=1))
        entry["trials"] = trials  # this grid's, in its order
        best = choose(trials, retain_min)
        entry["chosen"] = best["settings"] if best else None
        entry["chosen_result"] = best
        atomic_write(out, json.dumps(result, indent=1))
    result["wall_s"] = round(time.time() - start, 1)
    atomic_write(out, json.dumps(result, indent=1))
    atomic_write(choices_path(out), json.dumps(choices(result), indent=1))
    return result


def tuned_overrides(path: str | Path) -> dict[str, dict[str, str]]:
    """``{method: settings}`` chosen in a tuning file (methods without a setting that met the bound: omitted)."""
    from unlearn.methods import method_names

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}); "
                         "an `unlearn tune` output is a JSON object") from None
    except (OSError, UnicodeDecodeError) as err:  # a folder, unreadable, not text
        raise ValueError(f"--tuned {path}: cannot be read as a tuning file ({getattr(err, 'strerror', None) or err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("methods"), dict):
        raise ValueError(f"{path}: not an `unlearn tune` output (no 'methods')")
    unknown = [m for m in data["methods"] if m not in method_names()]
    if unknown:
        raise ValueError(f"{path}: names method(s) {', '.join(map(repr, unknown))} that are not registered; "
                         f"valid: {', '.join(method_names())}")
    for m, e in data["methods"].items():
        if not isinstance(e, dict) or not isinstance(e.get("chosen") or {}, dict):
            raise ValueError(f"{path}: methods.{m} must be an object whose 'chosen' is an object of settings")
    return {m: dict(e["chosen"]) for m, e in data["methods"].items() if e.get("chosen")}


def to_markdown(result: dict) -> str:
    rows = ["| method | chosen setting | forget efficacy | retain performance | trials |", "|---|---|---|---|---|"]
    for m, e in result["methods"].items():
        c = e.get("chosen_result")
        setting = ", ".join(f"{k}={v}" for k, v in e["chosen"].items()) if e.get("chosen") else "defaults (none met the bound)"
        rows.append(f"| {m} | {setting} | {c['forget_efficacy']:.3f} | {c['retain_performance']:.3f} | {len(e['trials'])} |"
                    if c else f"| {m} | {setting} | - | - | {len(e['trials'])} |")
    return "\n".join(rows)
