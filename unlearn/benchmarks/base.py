"""What every benchmark shares: the registry, the :class:`Benchmark` base (arguments, device and precision,
target/gold model folders, loading, cached target/gold evaluations, the cell and its record), the method-running
step of a cell (settings, token count, dynamics probe, cost), the summary columns, ``tier_recipe`` (a tier's
recipe from ``unlearn/tiers.py`` as profile fields) and small helpers. A benchmark package (``tofu/``, ``muse/``,
``wmdp/``, ``unsafe/``) adds its data, profile and protocol classes, evaluator and the measures of its cells
(``judge``), and registers itself in ``BENCHMARKS``; its recipes are in ``unlearn/tiers.py`` (or, for a package
of its own, in its class)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import resource
import time
from pathlib import Path

import numpy as np
import torch

from unlearn.cache import cached_json
from unlearn.provenance import source_version
from unlearn.methods import UnlearnContext, get_method, make_config, schedule_overrides
from unlearn.models import LoadedModel, LoraSpec, load_model
from unlearn.numerics import nudge_ulps, numerics_info, resolve_device, resolve_precision
from unlearn.registry import Registry
from unlearn.tiers import TINY_MODEL, Recipe, Tier, is_tiny, run_tier
from unlearn.train import TrainConfig

BENCHMARKS: Registry = Registry("benchmark")
NO_RUN = {"cost": None, "dynamics": None, "method_stats": None}  # what the retrain row's "run" records
DATA_CHOICES = ("auto", "real", "synthetic")  # auto: the model profile's (real data; synthetic for tiny-qwen3)
TUNED_DIR = Path(__file__).resolve().parent.parent / "data" / "tuned"


# Source that decides a target/gold evaluation: everything but the unlearning methods, the tiers' tuned settings
# (they change cells, not reference models) and the modules that only run, route or present results.
NOT_EVALUATION = ("methods/", "data/tuned/", "bench.py", "executors.py", "tune.py", "cli.py", "__main__.py",
                  "export.py", "report.py", "html_report.py", "options.py")


def evaluation_code_version() -> str:
    """Hash of the source of the evaluators, metrics, models and scoring (derived from the files, never bumped by
    hand): part of every cached target/gold evaluation's key, so an evaluation computed by other code is never
    reused."""
    return source_version(exclude=NOT_EVALUATION)


class Benchmark:
    """The shared part of a benchmark. A subclass sets ``name``, ``splits``, ``dry_run_splits`` and ``protocols``,
    and implements ``make_profile`` (its recipes), ``data(split)``, ``identity(split)``, ``evaluate(lm, split)``,
    ``target_dir(split)``, ``gold_dir(split)``, ``context`` and ``dynamics_probe`` (what a method unlearns),
    :meth:`judge` and :meth:`references` (a cell's measures: :meth:`run_cell` is the cell), and declares its own
    measures once: ``native_metrics`` (the report's columns beside the summary) and ``snapshot_metrics`` (what
    :meth:`metric_snapshot` pins beside the summary). Every method here takes ``split`` first where it takes
    one; a benchmark whose models do not depend on the split (MUSE) ignores it.

    Models: ``target_dir`` / ``gold_dir`` are fine-tuned folders cached by recipe (``_model_dir``);
    ``reference_eval(kind, split)`` is their evaluation, cached in memory and beside the model, keyed by the
    protocol, the quantisation, the data and :func:`evaluation_code_version`."""

    name: str = ""
    splits: tuple[str, ...] = ()
    # False: one target and one gold serve every split (MUSE), else each split trains its own
    models_per_split: bool = True
    # True: a method's cells on every split share a run (MUSE's first unlearning step), so they belong together
    # in one worker process (evals' scheduling)
    cells_share_a_run: bool = False
    # a benchmark from a package of its own (an ``unlearn.benchmarks`` entry point) declares its recipes here, by
    # tier name ("tiny", "reduced", "full"; "<tier>@dry_run" for the dry run's variant where it differs); the
    # built-in benchmarks' are in unlearn/tiers.py (:func:`recipe_for` reads both)
    recipes: dict = {}
    native_metrics: tuple[str, ...] = ()  # the report's columns of the benchmark's own measures (unlearn.report)
    snapshot_metrics: tuple[str, ...] = ()  # the cell metrics its snapshots pin, beside the summary columns

    @classmethod
    def metric_snapshot(cls, cell: dict) -> dict:
        """Small, sorted dict of the cell's ``snapshot_metrics`` and summary, rounded to 4 significant figures
        (what syrupy pins)."""
        out = {k: round_sig(cell["metrics"][k]) for k in cls.snapshot_metrics}
        out.update({k: round_sig(v) for k, v in cell["summary"].items()})
        return dict(sorted(out.items()))
    dry_run_splits: tuple[str, ...] = ()
    # the split `unlearn tune` chooses on by default, disjoint from every evaluated one (None: not tunable)
    tune_split: str | None = None
    protocols: tuple[str, ...] = ("full", "reduced")
    protocol_help = ""  # appended to the unknown-protocol error
    model_prefix = ""  # of the cached model folders' kind ("muse-" -> muse-target-<hash>)
    model_sink = None  # called with a cell's final unlearned model (LoadedModel) before it is dropped (`unlearn export`)

    def __init__(self, model: str = TINY_MODEL, *, data_dir=None, quant: str | None = None, device: str = "auto",
                 dry_run: bool = False, max_steps: int | None = None, seed: int = 0, progress: bool = True,
                 profile=None, precision: str = "auto", data: str = "auto", protocol: str | None = None,
                 compat: str = "tofu", init_ulps: int = 0):
        if data not in DATA_CHOICES:
            raise ValueError(f"unknown data choice {data!r}; valid: {', '.join(DATA_CHOICES)}")
        if protocol not in (None, *self.protocols):
            raise ValueError(f"unknown {self.name.upper()} protocol {protocol!r}; valid: "
                             + (self.protocol_help or ", ".join(self.protocols)))
        self.model, self.quant, self.seed = model, quant, seed
        # > 0: the targets' and golds' initial weights moved by up to this many ulps (unlearn.numerics.nudge_ulps),
        # standing in for another CPU's rounding (evals/test_perturbation.py); their cached folders are kept apart
        self.init_ulps = init_ulps
        self.device = resolve_device(device)
        # auto: bf16 only where the hardware runs it natively; the tiny tier stays float32 (its snapshots)
        tiny_default = is_tiny(model) and precision in (None, "auto")
        self.precision = "fp32" if tiny_default else resolve_precision(precision, self.device)
        fixed = getattr(getattr(profile, "protocol", None), "bf16", None)
        if fixed is not None:  # a caller's own recipe (tests) fixes its precision itself
            self.precision = "bf16" if fixed else "fp32"
        self.profile = profile or self.make_profile(model, dry_run, max_steps, self.precision, protocol, compat)
        if data != "auto":
            self.profile = dataclasses.replace(self.profile, use_real_data=data == "real")
        self.data_dir, self.data_choice, self.progress = data_dir, data, progress
        self.protocol_name, self.compat = protocol, compat  # as asked (None: the profile's); `unlearn eval` reads them
        self.notes: list[str] = [self.profile.note]
        self._evals: dict[tuple[str, str | None], dict] = {}

    def make_profile(self, model: str, dry_run: bool, max_steps: int | None, precision: str, protocol: str | None,
                     compat: str):
        """The benchmark's profile for ``model`` (target, gold, unlearning schedule, evaluation protocol): its
        tier's recipe from ``unlearn/tiers.py`` (``tier_recipe``) in the benchmark's own classes."""
        raise NotImplementedError

    # -------------------------------------------------------------- `unlearn eval`
    def eval_inputs(self, split: str, *, max_rows: int | None = None, subjects: list[str] | None = None,
                    eval_protocol=None):
        """What ``unlearn eval`` scores on ``split`` (data read and checked before any model loads): an object
        handed to :meth:`evaluate_model`. ``max_rows`` caps every set; ``subjects`` selects sets where the
        benchmark has several (WMDP); ``eval_protocol`` replaces the named protocol entirely (tests)."""
        raise NotImplementedError(f"{self.name} has no `unlearn eval` yet")

    def evaluate_model(self, lm: LoadedModel, inputs) -> dict:
        """A given model's evaluation (no unlearning, no target or gold): {"split", "protocol" (description),
        "protocol_name", "compat", "precision", "data" (source), "metrics" ({name: number}), "per_question",
        "logs" (TOFU-format logs or None), ...}. A benchmark with :meth:`judge` builds it as
        ``eval_record(score_model(lm, inputs), inputs)``."""
        return self.eval_record(self.score_model(lm, inputs), inputs)

    def score_model(self, lm: LoadedModel, inputs) -> dict:
        """A given model's evaluation on ``inputs`` in the form a cell's evaluation has (what :meth:`judge` reads)."""
        raise NotImplementedError(f"{self.name} has no `unlearn eval` yet")

    def eval_record(self, scored: dict, inputs) -> dict:
        """:meth:`evaluate_model`'s record of a :meth:`score_model` result."""
        raise NotImplementedError(f"{self.name} has no `unlearn eval` yet")

    # -------------------------------------------------------------- a model against the target and the gold
    @classmethod
    def judges_given_models(cls) -> bool:
        """Whether a given model can be judged against a given target and gold (``unlearn eval --target --gold``,
        the gate's checkpoint rows): the benchmark scores any model in the form its cells are judged on
        (:meth:`score_model`)."""
        return cls.score_model is not Benchmark.score_model

    def judge(self, split: str | None, ev: dict, target: dict, gold: dict) -> dict:
        """A model's cell measures from its evaluation and the target's and gold's (each the form :meth:`evaluate`
        and :meth:`score_model` give): {"summary" (the three summary columns), "metrics" (the benchmark's measures,
        those relative to the gold included), "intervals"}. What a cell records after unlearning, and what
        ``unlearn eval --target --gold`` and the gate's checkpoint rows decide on."""
        raise NotImplementedError(f"{self.name} does not judge a model against a target and a gold (no judge())")

    # -------------------------------------------------------------- models
    def _model_dir(self, kind: str, rows: list) -> Path:
        """The folder of the model fine-tuned on ``rows`` with the profile's target recipe (built once, cached).
        With ``--quant 4bit`` (and LoRA) the training itself is QLoRA: the base is loaded in 4-bit as the
        unlearning methods load it, so a 4B target trains under the same memory cap; the saved folder is plain."""
        from unlearn.train import finetuned_model_dir

        quant = self.quant if self.profile.lora is not None else None
        cfg = dataclasses.replace(self.profile.target, seed=self.seed, progress=self.progress, desc=kind)

        def start() -> LoadedModel:
            lm = load_model(self.model, quant=quant, lora=self.profile.lora, device=self.device)
            if self.init_ulps:
                nudge_ulps(lm.model, self.init_ulps)
            return lm

        prefix = self.model_prefix + (f"ulps{self.init_ulps}-" if self.init_ulps else "")
        return finetuned_model_dir(prefix + kind, self.model, rows, cfg, start,
                                   lora=self.profile.lora, device=self.device,
                                   text_length=getattr(self.profile, "text_length", None), quant=quant)

    def load(self, path, adapters: bool = True) -> LoadedModel:
        """A cached target/gold folder, with the profile's fresh LoRA adapters unless ``adapters`` is False."""
        lm = load_model(str(path), quant=self.quant, lora=self.profile.lora if adapters else None, device=self.device)
        lm.name = self.model
        return lm

    # -------------------------------------------------------------- reference evaluations
    def reference_dir(self, kind: str, split: str | None) -> Path:
        """The model folder behind ``kind`` ("target" or "gold")."""
        return Path(self.target_dir(split) if kind == "target" else self.gold_dir(split))

    def reference_ident(self, kind: str, split: str | None) -> str:
        """Everything that decides the evaluation of ``kind`` on ``split`` (its cache key)."""
        data_id = self.identity(split)
        return (json.dumps(dataclasses.asdict(self.profile.protocol), sort_keys=True) + str(self.quant) + str(split)
                + data_id["hash"] + data_id.get("eval_hash", "") + evaluation_code_version())

    def evaluate_reference(self, kind: str, split: str | None, lm: LoadedModel) -> dict:
        return self.evaluate(lm, split)

    def reference_eval(self, kind: str, split: str | None = None) -> dict:
        """Evaluation of the target or the gold on ``split``, cached in memory and beside the model."""
        if (kind, split) not in self._evals:
            path = self.reference_dir(kind, split)
            self._evals[kind, split] = cached_json(
                path / f"eval-{self.name}{'-' + split if split else ''}-{digest(self.reference_ident(kind, split))}.json",
                lambda: self.evaluate_reference(kind, split, self.load(path, adapters=False)))
        return self._evals[kind, split]

    # -------------------------------------------------------------- one cell
    def unlearn_context(self, split: str | None, lm: LoadedModel, schedule: dict | None, *, forget: list,
                        retain: list, forget_questions: list[str], idk_answers: list[str]) -> UnlearnContext:
        """What a method unlearns from ``lm`` (the benchmark's ``context`` gives the rows): the profile's unlearning
        schedule with this run's seed and ``schedule`` (``--set npo.lr=...``) over it, the gold on demand (where
        the split has one) and the target's learning rate."""
        sched = dataclasses.replace(self.profile.unlearn, seed=self.seed, progress=self.progress, **(schedule or {}))
        build_gold = (lambda: self.load(self.gold_dir(split), adapters=False)) if self.has_gold(split) else None
        return UnlearnContext(lm=lm, forget=forget, retain=retain, schedule=sched, forget_questions=forget_questions,
                              idk_answers=idk_answers, build_gold=build_gold, target_lr=self.profile.target.lr)

    def has_gold(self, split: str | None) -> bool:
        """Whether ``split`` has a gold (a model trained without its forget set)."""
        return True

    def run_cell(self, method: str, split: str, overrides: dict | None = None) -> dict:
        """One benchmark x split x method cell: ``method`` unlearns from the target (the retrain row is the gold
        itself), the model is evaluated (:meth:`evaluate`), attacked where the profile asks (:meth:`robustness`),
        and judged against the target's and the gold's evaluations (:meth:`judge`); :meth:`cell_record` is what the
        cell records. Those evaluations are read once they are needed, after the unlearning, so a worker process
        may unlearn while another evaluates the target (unlearn.executors)."""
        cfg, sched = method_settings(method, self.profile.method_overrides, overrides)
        start = time.time()
        run, robust = dict(NO_RUN), None
        if method == "retrain":
            ev = self.reference_eval("gold", split)
            robust = self.gold_robustness(split, ev)
        else:
            ctx = self.context(split, self.load(self.target_dir(split)), sched)
            lm, run = run_method(method, cfg, ctx, lambda m, counter: self.dynamics_probe(split, m, counter), self.seed)
            ev = self.evaluate(lm, split)
            if ctx.probe is not None and ctx.probe.defer_final:  # the last step's point: the evaluation scored its rows
                ctx.probe.fill_deferred(self.probe_values(ev))
            if getattr(self.profile, "robustness", None) is not None:
                robust = self.robustness(lm, split, ev)
            if self.model_sink is not None:  # `unlearn export` (after the attacks, which work on copies)
                self.model_sink(lm)
        target, gold = self.reference_eval("target", split), self.gold_eval(split)
        judged = self.judge(split, ev, target, gold)
        if robust is not None:
            self.add_robustness(judged, robust)
        return self.cell_record(method, split, cfg, sched, judged, ev=ev, target=target, gold=gold, run=run,
                                robust=robust, start=start)

    # what a cell's metrics take from its robustness checks (relearn_excess is computed here), and its summary
    robust_metrics: tuple[str, ...] = ("relearn_recovery", "relearn_control")
    robust_summary: tuple[str, ...] = ()

    def add_robustness(self, judged: dict, robust: dict) -> None:
        """The robustness checks' measures into the judged cell: ``robust_metrics`` and ``relearn_excess`` (> 0:
        the forgotten answers come back faster than the attack's rows teach a model that never saw them) into its
        metrics, ``robust_summary`` into its summary (relearning clipped to [0, 1] there only)."""
        metrics = judged["metrics"]
        metrics.update({k: robust[k] for k in self.robust_metrics})
        rec, control = robust["relearn_recovery"], robust["relearn_control"]
        metrics["relearn_excess"] = None if rec is None or control is None else rec - control
        clip = lambda x: None if x is None else min(1.0, max(0.0, x))  # noqa: E731
        judged["summary"].update({k: clip(robust[k]) if k.startswith("relearn_") else robust[k]
                                  for k in self.robust_summary})

    def robustness(self, lm: LoadedModel, split: str, evaluation: dict) -> dict:
        """The attacks on an unlearned model (relearning, regeneration): {"relearn_recovery", "relearn_control",
        ...}; only called where the profile has ``robustness`` settings."""
        raise NotImplementedError(f"{self.name} has no robustness checks")

    def gold_robustness(self, split: str, gold: dict) -> dict | None:
        """The retrain row's robustness record (the gold's own attack), or None."""
        return None

    def gold_eval(self, split: str) -> dict | None:
        """The gold's evaluation a cell is judged against (None where the benchmark has no gold)."""
        return self.reference_eval("gold", split)

    def probe_values(self, evaluation: dict) -> dict[str, float]:
        """The dynamics probe's measure read from the final evaluation (a probe with ``defer_final``)."""
        raise NotImplementedError(f"{self.name}'s probe defers no point")

    def references(self, target: dict, gold: dict | None) -> dict:
        """The target's and gold's values a cell's record keeps beside its own."""
        raise NotImplementedError

    def cell_per_question(self, ev: dict, target: dict) -> dict:
        """The per-question values a cell's record keeps (its evaluation's; TOFU adds its logs)."""
        return ev["per_question"]

    def cell_notes(self, split: str) -> list[str]:
        """The notes of a cell on ``split`` beside the benchmark's own."""
        return []

    def cell_protocol_name(self, split: str) -> str:
        """The protocol's name in a cell's record (WMDP's synthetic split names itself)."""
        return self.profile.protocol.name

    def record_extras(self, split: str) -> dict:
        """Fields of a cell's record only this benchmark has (after ``robustness``)."""
        return {}

    def cell_record(self, method: str, split: str, cfg, sched: dict, judged: dict, *, ev: dict, target: dict,
                    gold: dict | None, run: dict, robust: dict | None, start: float,
                    notes: list[str] | None = None) -> dict:
        """A cell's record (what ``benchmark_results.json`` holds per cell; unlearn.cells reads it); ``notes``: the
        run's own beside the benchmark's."""
        gold_dir = self.gold_dir(split) if gold is not None else None
        return {"benchmark": self.name, "method": method, "split": split, "summary": judged["summary"],
                "intervals": judged["intervals"], "metrics": judged["metrics"], "references": self.references(target, gold),
                "method_config": dataclasses.asdict(cfg), "method_stats": run["method_stats"],
                "per_question": self.cell_per_question(ev, target),
                "model": {"name": self.model, "quant": self.quant,
                          "lora": dataclasses.asdict(self.profile.lora) if self.profile.lora else None,
                          "target": Path(self.target_dir(split)).name, "gold": Path(gold_dir).name if gold_dir else None},
                "data": self.identity(split), "protocol": self.profile.protocol.describe(),
                "protocol_name": self.cell_protocol_name(split),
                "notes": list(dict.fromkeys([*self.notes, *self.cell_notes(split), *(notes or [])])),
                "unlearn_schedule": schedule_record(self.profile.unlearn, sched), "cost": run["cost"],
                "dynamics": run["dynamics"], "robustness": robust, **self.record_extras(split),
                "precision": self.precision, "device": self.device, "numerics": numerics_info(self.device),
                "wall_s": round(time.time() - start, 2), "peak_memory_mb": round(peak_memory_mb(self.device), 1)}

    # -------------------------------------------------------------- intervals
    def interval_measures(self, target: dict, gold: dict | None, ev: dict):
        """``(forget Measure, utility Measure, MIA member scores, non-member scores)`` of a cell from the target's,
        the gold's and the model's evaluations (:mod:`unlearn.intervals`); None: the benchmark describes none."""
        return None

    def mia_unit_size(self, split: str) -> int:
        """How many consecutive membership rows belong to one independent unit (an author's questions, an
        agent's): the membership intervals resample units, not rows. 1: every row is its own unit."""
        return 1

    def summary_intervals(self, target: dict, gold: dict | None, ev: dict, summary: dict, *, split: str | None = None,
                          mia_gold: dict | None = None) -> dict | None:
        """Bootstrap 95% intervals over questions of the cell's three summary columns, and over membership units
        (authors, articles, agents: :func:`unlearn.intervals.membership_intervals`) of the MIA AUC, the gold's AUC
        on the same rows (``mia_gold``, default ``gold``), ``mia_gap`` and ``mia_offset``. The bootstrap's value on
        the questions as they are must equal ``summary`` (else the measure it resamples is not the summary's:
        an error, not a silently wrong interval). None where the benchmark gives no measures or a set is empty."""
        from unlearn.intervals import MIN_CLUSTERS, cluster_ids, membership_intervals, summary_intervals

        measures = self.interval_measures(target, gold, ev)
        if measures is None or any(len(a) == 0 for m in measures[:2] for a in m.target.values()):
            return None
        out = summary_intervals(*measures)
        for column, value in out["point"].items():
            want = summary[column]
            same = (math.isnan(value) and math.isnan(want)) or math.isclose(value, want, rel_tol=1e-9, abs_tol=1e-12)
            if not same:
                raise RuntimeError(f"{self.name}: the bootstrap's {column} on the questions as they are is {value!r}, "
                                   f"the cell's summary {want!r}: its per-question measure is not the summary's")
        result = {k: out[k] for k in ("ci", "n_boot", "level", "method")}
        members, nonmembers = measures[2], measures[3]
        mia_gold = gold if mia_gold is None else mia_gold
        if members is not None and nonmembers is not None and len(members) and len(nonmembers):
            size = self.mia_unit_size(split)
            g = self.interval_measures(target, gold, mia_gold) if mia_gold is not None else None
            units = membership_intervals(members, nonmembers, cluster_ids(len(members), size),
                                         cluster_ids(len(nonmembers), size), *(g[2:4] if g else (None, None)))
            result["membership"] = {**units, "unit_rows": size,
                                    "method": "percentile bootstrap over membership units (authors, articles, agents), "
                                              "members' and non-members' units drawn separately, the same draw for the "
                                              "model and the gold; none with fewer than "
                                              f"{MIN_CLUSTERS} units a side"}
        return result


def tier_settings(tier: str, base: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """A tier's method settings: ``base`` under the choices of its committed `unlearn tune` run
    (unlearn/data/tuned/<tier>.json); just ``base`` when the tier has not been tuned."""
    from unlearn.tune import tuned_overrides

    out = {m: dict(v) for m, v in (base or {}).items()}
    path = TUNED_DIR / f"{tier}.json"
    if tier.replace("-", "").replace(".", "").replace("_", "").isalnum() and path.is_file():  # presets, not paths
        for m, fields in tuned_overrides(path).items():
            out.setdefault(m, {}).update(fields)
    return out


def recipe_for(tier: Tier, benchmark: str, dry_run: bool = False) -> Recipe:
    """``benchmark``'s recipe in ``tier``: from ``unlearn/tiers.py``, else from the benchmark class's own
    ``recipes`` (a benchmark package of its own)."""
    own = BENCHMARKS.get(benchmark).recipes if benchmark in BENCHMARKS else {}
    if benchmark in tier.recipes or tier.name not in own:
        return tier.recipe(benchmark, dry_run)
    return own.get(f"{tier.name}@dry_run", own[tier.name]) if dry_run else own[tier.name]


def tier_recipe(benchmark: str, model: str, dry_run: bool, precision: str, protocol: str | None,
                protocol_label: str | None = None) -> tuple[Tier, Recipe, dict]:
    """The tier ``model`` runs in under ``protocol`` (None: ``reduced`` for the dry run, else ``full``), its recipe
    for ``benchmark`` (``unlearn/tiers.py``), and the profile fields every benchmark builds alike from it:
    ``target`` and ``unlearn`` (TrainConfig; bf16 autocast when ``precision`` is bf16 and the tier follows it),
    ``lora``, ``method_overrides`` (the tier's settings under its tuned file's, "Nx" values as N times the
    recipe's unlearning lr) and ``note`` (formatted with
    ``precision`` and ``protocol_label``, default the protocol's name)."""
    protocol = protocol or ("reduced" if dry_run else "full")
    tier = run_tier(model, dry_run, protocol)
    r = recipe_for(tier, benchmark, dry_run)
    mp = {"mixed_precision": "bf16" if precision == "bf16" else "no"} if tier.follows_precision else {}
    from unlearn.tune import resolve_multiple

    settings = (tier_settings(tier.tuned.format(model=model), tier.settings) if tier.tuned
                else {m: dict(v) for m, v in tier.settings.items()})
    unlearn = TrainConfig(**r.unlearn, **mp, desc="unlearn")
    # "Nx" settings: N times the schedule's unlearning lr, as in the tuning grids
    settings = {m: {k: resolve_multiple(v, unlearn.lr) for k, v in fields.items()} for m, fields in settings.items()}
    common = dict(target=TrainConfig(**r.target, **mp, desc="target"), unlearn=unlearn,
                  lora=LoraSpec(*tier.lora) if tier.lora else None, method_overrides=settings,
                  note=r.note.format(precision=precision, protocol=protocol_label or protocol))
    return tier, r, common


def with_max_steps(profile, max_steps: int | None):
    """``profile`` with its unlearning schedule capped at ``max_steps`` (None: unchanged)."""
    if max_steps is None:
        return profile
    return dataclasses.replace(profile, unlearn=dataclasses.replace(profile.unlearn, max_steps=max_steps))


def method_settings(method: str, profile_overrides: dict, overrides: dict | None):
    """(method config, shared-schedule changes) of ``method``: the profile's settings, then the caller's
    (``--set``) over them."""
    merged = {m: dict(v) for m, v in profile_overrides.items()}
    for m, fields in (overrides or {}).items():
        merged.setdefault(m, {}).update(fields)
    return make_config(method, merged), schedule_overrides(method, merged)


def run_method(method: str, cfg, ctx: UnlearnContext, probe_factory=None, seed: int = 0) -> tuple[LoadedModel, dict]:
    """Unlearn with ``method`` on ``ctx``; returns the model (LoRA merged for evaluation) and what the run
    cost and showed: {"cost": {"unlearn_s", "tokens"}, "dynamics": probe points or None, "method_stats"}.
    ``probe_factory(lm, counter) -> Probe | None`` builds the benchmark's dynamics probe."""
    torch.manual_seed(seed)
    t0, counter = time.time(), TokenCounter(ctx.lm.model)
    ctx.probe = probe_factory(ctx.lm, counter) if probe_factory is not None else None
    with counter:
        lm = get_method(method).run(ctx, cfg)
    info = {"cost": {"unlearn_s": round(time.time() - t0, 2), "tokens": counter.tokens},
            "dynamics": ctx.probe.points if ctx.probe is not None else None,
            "method_stats": getattr(lm.model, "_unlearn_stats", None)}
    return merged_for_evaluation(lm), info


def autocast(model, enabled: bool):
    """bf16 autocast on the model's device (a no-op context when not ``enabled``)."""
    return torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16, enabled=enabled)


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def first_n(rows: list, n: int | None) -> list:
    """The first ``n`` rows (all when ``n`` is None): a protocol's row cap."""
    return rows if n is None else rows[:n]


def round_sig(x: float | None, sig: int = 4) -> float | None:
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{sig}g}")


def schedule_record(schedule, sched: dict) -> dict:
    """The shared unlearning schedule a cell ran with (the profile's, with the method's changes)."""
    return {k: v for k, v in dataclasses.asdict(dataclasses.replace(schedule, **sched)).items()
            if k not in ("progress", "desc")}


class TokenCounter:
    """Tokens that pass through a model's input embedding while active: the unlearning run's work, counted
    the same way for every method (forward passes of the model being unlearned; a separate frozen copy's
    passes are not counted). Deterministic, unlike wall time, so tuning can break ties on it."""

    def __init__(self, model):
        self.embedding, self.tokens, self._handle, self.paused = model.get_input_embeddings(), 0, None, False

    def _count(self, module, args):
        if not self.paused:
            self.tokens += int(args[0].numel())

    def __enter__(self):
        self._handle = self.embedding.register_forward_pre_hook(self._count)
        return self

    def __exit__(self, *exc):
        self._handle.remove()


def merged_for_evaluation(lm: LoadedModel) -> LoadedModel:
    """Fold LoRA adapters into full-precision weights before scoring: the same function, evaluated
    without the adapter overhead. Quantised bases and IWAP's output masks (hooks on the adapter
    wrappers) are left as they are."""
    from unlearn.models import is_peft, is_quantised

    model = lm.model
    if is_peft(model) and not is_quantised(model) and not hasattr(model, "_iwap_hooks"):
        lm.model = model.merge_and_unload()
    return lm


def text_membership_scores(model, tok, texts: list[str], max_tokens: int | None, batch_size: int, k: float,
                           progress: bool = False, desc: str = "mia") -> dict[str, np.ndarray]:
    """Every MIA score (LOSS, ZLib, Min-K%, Min-K%++; higher = member) of plain texts, each cut to its first
    ``max_tokens`` tokens (None: all), no EOS appended."""
    from unlearn.metrics import mia
    from unlearn.scoring import encode_text, score_examples

    examples = [encode_text(tok, t, max_tokens, eos=False) for t in texts]
    res = score_examples(model, examples, tok.pad_token_id, batch_size=batch_size, token_stats=True,
                         share_prompts=False, progress=progress, desc=desc)
    return mia.scores_of(res, texts, k)


def fold_into_weights(lm: LoadedModel):
    """The unlearned model as plain full-precision weights: LoRA adapters merged, IWAP's pruned atoms zeroed
    in the weights (its output-mask hooks removed). A 4-bit (QLoRA) model becomes a dequantised copy in its
    compute dtype on the CPU (``unlearn.models.dequantised_copy``); the 4-bit model itself is left as it was."""
    from unlearn.methods.iwap import merge_masks
    from unlearn.models import dequantised_copy, is_peft, is_quantised

    model = lm.model
    pruned = getattr(model, "_iwap_pruned", None)
    hooks = getattr(model, "_iwap_hooks", [])
    if is_quantised(model):
        model, hooks = dequantised_copy(model), []  # the hooks stay on the 4-bit model; the copy has none
    elif is_peft(model):
        model = model.merge_and_unload()
    if pruned is not None:
        for h in hooks:
            h.remove()
        with torch.no_grad():
            merge_masks(model, pruned["mlp"], pruned["heads"])
    return model


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def mia_versus_gold(mia_auc: float | None, gold_auc: float | None) -> dict:
    """The membership verdict's numbers: the gold's AUC on the same rows, ``mia_gap`` = |AUC - gold's| (what an
    unlearned model is held to: near the gold's on either side, since an AUC far below it flags the forget rows
    as well) and ``mia_offset`` = |AUC - 0.5| (what the gold itself is held to: its rows are enough to calibrate
    the comparison). None where a value is missing."""
    ok = lambda x: isinstance(x, (int, float)) and not math.isnan(x)  # noqa: E731
    return {"gold_mia_auc": gold_auc if ok(gold_auc) else None,
            "mia_gap": abs(mia_auc - gold_auc) if ok(mia_auc) and ok(gold_auc) else None,
            "mia_offset": abs(mia_auc - 0.5) if ok(mia_auc) else None}


def summary_columns(m_target: float, m_gold: float, m_model: float, u_target: float, u_model: float, mia_auc: float) -> dict:
    """Forget efficacy = clip((m_t - m)/(m_t - m_g), 0, 1); retain performance = u/u_t; MIA AUC as is."""
    gap = m_target - m_gold
    efficacy = float(np.clip((m_target - m_model) / gap, 0, 1)) if gap > 0 else float("nan")
    retain = u_model / u_target if u_target > 0 else float("nan")
    return {"forget_efficacy": efficacy, "retain_performance": retain, "mia_auc": mia_auc}
