"""Benchmarks as pluggable units (data + target/gold recipes + evaluator) and the one cell runner that
both ``evals/`` and ``unlearn bench`` call: a cell is (benchmark, method, split)."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from unlearn.data.tofu import TofuData, find_tofu_source, load_tofu, synthetic_tofu
from unlearn.evaluate import PROTOCOL_NAMES, EvalProtocol, _autocast, _protocol_splits, evaluate_tofu, protocol_preset
from unlearn.metrics.tofu import forget_quality, forget_truth_ratios
from unlearn.methods import UnlearnContext, get_method, make_config, schedule_overrides
from unlearn.models import LoadedModel, LoraSpec, load_model
from unlearn.numerics import numerics_info, resolve_device, resolve_precision
from unlearn.registry import Registry
from unlearn.robustness import RobustnessConfig, attack, forget_measure, recovery, regeneration_leak, relearn_split
from unlearn.scoring import encode_qa, score_examples
from unlearn.train import Probe, TrainConfig, finetuned_model_dir

BENCHMARKS: Registry = Registry("benchmark")
DATA_CHOICES = ("auto", "real", "synthetic")  # auto: the model profile's (real TOFU; synthetic for tiny-qwen3)
CELL_CODE_VERSION = 3  # bump when evaluation or metric code changes: invalidates cached target/gold evaluations


@dataclass(frozen=True)
class Profile:
    """Everything that fixes a benchmark's numbers for a model: data slice, recipes and evaluation."""

    target: TrainConfig  # fine-tuning recipe of target (full) and gold (retain only)
    unlearn: TrainConfig  # shared unlearning schedule (epochs = passes over forget)
    lora: LoraSpec | None
    protocol: EvalProtocol
    synthetic_authors: int = 40  # synthetic data size when no real data is used
    real_slice_retain: int | None = None  # reduced protocol: retain rows trained with the forget authors
    use_real_data: bool = True
    method_overrides: dict = field(default_factory=dict)  # profile-level defaults; --set wins over them
    note: str = ""
    # "full": the target is evaluated like any model; "reference": only its forget ROUGE and Model Utility,
    # all the summary columns use (evaluate.reference_aggregates; about a third of the work)
    target_eval: str = "full"
    # unlearning dynamics: forget and retain Prob measured before the first step, every epoch (IWAP: round) and
    # after the last; at most this many forget / retain-eval rows (0 turns it off)
    dynamics_rows: tuple[int, int] = (40, 20)
    # relearning attack + regeneration leakage per cell (unlearn/robustness.py); None: off
    robustness: RobustnessConfig | None = None


TUNED_DIR = Path(__file__).parent / "data" / "tuned"


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


def profile_for(model: str, dry_run: bool, max_steps: int | None, precision: str = "fp32", protocol: str | None = None,
                compat: str = "tofu") -> Profile:
    """Recipes per model; documented in the README. ``protocol``: ``reduced`` (the dry run's default) or
    ``full`` (the published one; the default otherwise) for real models; the tiny tier has its own.
    ``max_steps`` caps unlearning steps; ``precision`` (fp32 or bf16, already resolved from the hardware)
    sets autocast for training and evaluation of the real-model profiles (full protocol: scores stay
    float32); the tiny tier is float32 unless bf16 is asked for explicitly. ``compat``: evaluation
    conventions (``tofu`` or ``open-unlearning``)."""
    protocol = protocol or ("reduced" if dry_run else "full")
    if protocol not in PROTOCOL_NAMES:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOL_NAMES)}")
    mp, bf16 = ("bf16", True) if precision == "bf16" else ("no", False)
    if model == "tiny-qwen3":
        p = Profile(target=TrainConfig(lr=3e-3, epochs=20, batch_size=16, warmup_steps=10, weight_decay=0.01, desc="target"),
                    unlearn=TrainConfig(lr=3e-4, epochs=5, batch_size=8, desc="unlearn"), lora=None,
                    protocol=EvalProtocol(max_new_tokens=64), synthetic_authors=40, use_real_data=False,
                    # every method's settings: what `unlearn tune` chose on forget01 only (the file holds every
                    # trial and the rule); rmu's alpha 100 comes from its earlier grid (alpha {100, 1200}).
                    method_overrides=tier_settings("tiny-qwen3", {"rmu": {"alpha": "100"}}),
                    robustness=RobustnessConfig(lr=1e-3, steps=10),
                    note="tiny-qwen3 trained from scratch on synthetic authors (full fine-tuning)")
    elif protocol == "reduced":
        # Sized for about 5 minutes on 2 CPU cores (README): the target must still visibly know the
        # forget authors (measured: forget ROUGE-L recall 0.36 base -> 0.73 after these 4 epochs, 81 s).
        p = Profile(target=TrainConfig(lr=2e-3, epochs=4, batch_size=4, warmup_steps=2, weight_decay=0.01,
                                       mixed_precision=mp, desc="target"),
                    unlearn=TrainConfig(lr=1e-3, epochs=1, batch_size=8, mixed_precision=mp, desc="unlearn"),
                    lora=LoraSpec(r=16, alpha=32),
                    protocol=protocol_preset("reduced", compat, bf16),
                    real_slice_retain=10, synthetic_authors=20,
                    # the dry-run tier's settings: `unlearn tune --dry_run --grid benchmarks/grids/dry_run.json`
                    method_overrides=tier_settings(f"{model}-reduced", {"dsu": {"forget_epochs": "1"}}),
                    target_eval="reference",
                    note="reduced CPU protocol: trained on the forget authors + 10 retain QA; evaluated on 40 forget, "
                         "10 retain, 10 real-author, 10 world-fact rows, greedy <= 48 tokens; 1 unlearning epoch; "
                         "dsu.forget_epochs=1")
    else:
        p = Profile(target=TrainConfig(lr=1e-4, epochs=5, batch_size=16, warmup_steps=50, weight_decay=0.01,
                                       mixed_precision=mp, desc="target"),
                    unlearn=TrainConfig(lr=1e-5, epochs=5, batch_size=16, grad_accum=2, mixed_precision=mp, desc="unlearn"),
                    lora=LoraSpec(r=16, alpha=32), protocol=protocol_preset("full", compat, bf16), target_eval="reference",
                    robustness=RobustnessConfig(lr=1e-5, steps=10, batch_size=4),  # PROTOCOLS' lr
                    note=f"full TOFU protocol ({precision}; scores in fp32)")
    if model == "tiny-qwen3" and compat != "tofu":
        p = dataclasses.replace(p, protocol=dataclasses.replace(p.protocol, compat=compat))
    if model == "tiny-qwen3" and bf16:
        p = dataclasses.replace(p, target=dataclasses.replace(p.target, mixed_precision=mp),
                                unlearn=dataclasses.replace(p.unlearn, mixed_precision=mp),
                                protocol=dataclasses.replace(p.protocol, bf16=True, score_bf16=True))
    if max_steps is not None:
        p = dataclasses.replace(p, unlearn=dataclasses.replace(p.unlearn, max_steps=max_steps))
    return p


def peak_memory_mb(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def round_sig(x: float | None, sig: int = 4) -> float | None:
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{sig}g}")


@BENCHMARKS.register("tofu")
class TofuBenchmark:
    """TOFU cells: target fine-tuned on full, gold on retainNN; forget measure = forget ROUGE-L recall,
    utility = Model Utility, MIA = Min-K%++ AUC forget vs holdout."""

    splits = ("forget01", "forget05", "forget10")

    def __init__(self, model: str = "tiny-qwen3", *, data_dir=None, quant: str | None = None, device: str = "auto",
                 dry_run: bool = False, max_steps: int | None = None, seed: int = 0, progress: bool = True,
                 profile: Profile | None = None, precision: str = "auto", data: str = "auto",
                 target_eval: str | None = None, protocol: str | None = None, compat: str = "tofu",
                 robustness: bool | None = None):
        if data not in DATA_CHOICES:
            raise ValueError(f"unknown data choice {data!r}; valid: {', '.join(DATA_CHOICES)}")
        self.model, self.quant, self.seed = model, quant, seed
        self.device = resolve_device(device)
        # auto: bf16 only where the hardware runs it natively; the tiny tier stays float32 (its snapshots)
        tiny_default = model == "tiny-qwen3" and precision in (None, "auto")
        self.precision = "fp32" if tiny_default else resolve_precision(precision, self.device)
        if profile is not None:  # a caller's own recipe (tests) fixes its precision itself
            self.precision = "bf16" if profile.protocol.bf16 else "fp32"
        self.profile = profile or profile_for(model, dry_run, max_steps, self.precision, protocol, compat)
        if data != "auto":
            self.profile = dataclasses.replace(self.profile, use_real_data=data == "real")
        if robustness is False:
            self.profile = dataclasses.replace(self.profile, robustness=None)
        elif robustness and self.profile.robustness is None:  # the dry run's: off unless asked for
            self.profile = dataclasses.replace(self.profile, robustness=RobustnessConfig(lr=self.profile.unlearn.lr))
        if target_eval is not None:
            if target_eval not in ("full", "reference"):
                raise ValueError(f"unknown target_eval {target_eval!r}; valid: full, reference")
            self.profile = dataclasses.replace(self.profile, target_eval=target_eval)
        self.data_place, self.data_tried = (find_tofu_source(data_dir) if self.profile.use_real_data else (None, []))
        self.progress = progress
        self._data: dict[str, TofuData] = {}
        self._evals: dict[str, dict] = {}
        self.notes: list[str] = [self.profile.note]
        passed_over = [t for t in self.data_tried if "=" in t.split(":")[0]]  # folders without TOFU files
        if passed_over and self.data_place is not None:
            self.notes.append(f"TOFU from {self.data_place} (passed over: {'; '.join(passed_over)})")

    # -------------------------------------------------------------- data
    def data(self, split: str) -> TofuData:
        if split not in self.splits:
            raise ValueError(f"unknown TOFU split {split!r}; valid: {', '.join(self.splits)}")
        if split not in self._data:
            if self.data_place is not None:
                d = load_tofu(split, self.data_place)
                if self.profile.real_slice_retain is not None:
                    d = dataclasses.replace(d, retain_train=d.retain_train[: self.profile.real_slice_retain])
            else:
                d = synthetic_tofu(split, self.profile.synthetic_authors, seed=self.seed)
            self._data[split] = d
        return self._data[split]

    def identity(self, split: str) -> dict:
        from unlearn.train import rows_hash

        d = self.data(split)
        return {"source": d.source, "kind": "synthetic" if d.source.startswith("synthetic") else "real",
                "train_rows": len(d.full), "forget_rows": len(d.forget),
                "hash": rows_hash([(r.question, r.answer) for r in d.full])}

    # -------------------------------------------------------------- models
    def _model_dir(self, kind: str, pairs) -> Path:
        cfg = dataclasses.replace(self.profile.target, seed=self.seed, progress=self.progress, desc=kind)

        def build():
            return load_model(self.model, lora=self.profile.lora, device=self.device)

        return finetuned_model_dir(kind, self.model, pairs, cfg, build, lora=self.profile.lora, device=self.device)

    def target_dir(self, split: str) -> Path:
        return self._model_dir("target", [(r.question, r.answer) for r in self.data(split).full])

    def gold_dir(self, split: str) -> Path:
        return self._model_dir("gold", [(r.question, r.answer) for r in self.data(split).retain_train])

    def load(self, path: Path, adapters: bool = True) -> LoadedModel:
        lm = load_model(str(path), quant=self.quant, lora=self.profile.lora if adapters else None, device=self.device)
        lm.name = self.model
        return lm

    # -------------------------------------------------------------- evaluation
    def evaluate(self, lm: LoadedModel, split: str, reference_only: bool = False) -> dict:
        return evaluate_tofu(lm.model, lm.tokenizer, self.data(split), self.profile.protocol, progress=self.progress,
                             reference_only=reference_only)

    def reference_eval(self, kind: str, split: str) -> dict:
        """Evaluation of the target or gold model, cached in memory and next to the model on disk."""
        key = f"{kind}:{split}"
        if key not in self._evals:
            path = self.target_dir(split) if kind == "target" else self.gold_dir(split)
            proto = json.dumps(dataclasses.asdict(self.profile.protocol), sort_keys=True)
            # the evaluator's code version is part of the key, so a metric change never reuses a stale file
            reference_only = kind == "target" and self.profile.target_eval == "reference"
            ident = proto + str(self.quant) + self.identity(split)["hash"] + f"v{CELL_CODE_VERSION}"
            ident += "|reference" if reference_only else ""
            cache = path / f"eval-{split}-{_digest(ident)}.json"
            if cache.is_file():
                self._evals[key] = json.loads(cache.read_text())
            else:
                result = self.evaluate(self.load(path, adapters=False), split, reference_only)
                tmp = cache.with_suffix(f".{os.getpid()}.tmp")  # xdist workers never share a temp file
                tmp.write_text(json.dumps(result))
                tmp.replace(cache)
                self._evals[key] = result
        return self._evals[key]

    # -------------------------------------------------------------- one cell
    def context(self, split: str, lm: LoadedModel, schedule: dict | None = None) -> UnlearnContext:
        """``schedule``: changes to the shared unlearning schedule for this method (``--set npo.lr=...``)."""
        d, tok = self.data(split), lm.tokenizer
        sched = dataclasses.replace(self.profile.unlearn, seed=self.seed, progress=self.progress, **(schedule or {}))
        return UnlearnContext(
            lm=lm, forget=[encode_qa(tok, r.question, r.answer) for r in d.forget],
            retain=[encode_qa(tok, r.question, r.answer) for r in d.retain_train], schedule=sched,
            forget_questions=[r.question for r in d.forget], idk_answers=d.idk,
            build_gold=lambda: self.load(self.gold_dir(split), adapters=False), target_lr=self.profile.target.lr)

    def dynamics_probe(self, split: str, lm: LoadedModel, counter: "TokenCounter | None" = None) -> Probe | None:
        """forget_prob / retain_prob (TOFU's Prob: mean over rows of exp(-answer NLL / tokens)) on the first
        rows of the forget split and of the retain evaluation rows: a cheap subset of the metrics."""
        n_forget, n_retain = self.profile.dynamics_rows
        if not n_forget or not n_retain:
            return None
        d, tok = self.data(split), lm.tokenizer
        forget = [encode_qa(tok, r.question, r.answer) for r in d.forget[:n_forget]]
        retain = [encode_qa(tok, r.question, r.answer) for r in d.retain_eval[:n_retain]]
        device = next(lm.model.parameters()).device

        def measure(model):
            if counter is not None:  # the probe's forward passes are not the method's work
                counter.paused = True
            try:
                f = score_examples(model, forget, tok.pad_token_id, share_prompts=False, device=device)
                r = score_examples(model, retain, tok.pad_token_id, share_prompts=False, device=device)
            finally:
                if counter is not None:
                    counter.paused = False
            return {"forget_prob": float(np.exp(-f.mean_nll).mean()), "retain_prob": float(np.exp(-r.mean_nll).mean())}

        return Probe(measure)

    # -------------------------------------------------------------- robustness (issue 14)
    def _forget_rows_and_parts(self, split: str):
        rows = _protocol_splits(self.data(split), self.profile.protocol)["forget"]
        return rows, *relearn_split(len(rows), self.profile.robustness)

    @staticmethod
    def _row_values(log: dict, key: str) -> np.ndarray:
        return np.array([log[key][k] for k in sorted(log[key], key=int)], dtype=float)

    def _forget_rouge_rows(self, evaluation: dict) -> np.ndarray:
        if "forget" in evaluation["logs"]:
            return self._row_values(evaluation["logs"]["forget"], "rougeL_recall")
        return np.array(evaluation["forget_rouge_rows"], dtype=float)  # a reference-only target evaluation

    def _relearned_measure(self, model, tok, split: str) -> tuple[float, list[int]]:
        """Mean forget ROUGE on the eval part after the attack on the attack part (the model is copied)."""
        rows, attack_idx, eval_idx = self._forget_rows_and_parts(split)
        cfg, proto = self.profile.robustness, self.profile.protocol
        attacked = attack(model, tok, [rows[i] for i in attack_idx], cfg, lora=self.profile.lora,
                          mixed_precision=self.profile.unlearn.mixed_precision)
        with _autocast(attacked, proto.bf16):
            m = forget_measure(attacked, tok, [rows[i] for i in eval_idx], proto)
        return float(m.mean()), attack_idx

    def relearn_control(self, split: str, gold: LoadedModel | None = None) -> dict:
        """The attack on the gold (retain-only) model: what k forget rows teach a model that never saw them.
        ``gold``: the gold model when the caller has it loaded (the attack trains a copy)."""
        key = f"control:{split}"
        if key not in self._evals:
            rows, attack_idx, eval_idx = self._forget_rows_and_parts(split)
            target_rows = self._forget_rouge_rows(self.reference_eval("target", split))
            gold_rows = self._forget_rouge_rows(self.reference_eval("gold", split))
            gold = gold or self.load(self.gold_dir(split), adapters=False)
            m_rel, _ = self._relearned_measure(gold.model, gold.tokenizer, split)
            m_t, m_g = float(target_rows[eval_idx].mean()), float(gold_rows[eval_idx].mean())
            rec = recovery(m_rel, m_g, m_t)
            self._evals[key] = {"relearn_recovery": rec, "relearn_control": rec, "attack_rows": attack_idx,
                                "m_target": m_t, "m_unlearned": m_g, "m_relearned": m_rel,
                                "control": {"m_gold": m_g, "m_gold_relearned": m_rel}}
        return self._evals[key]

    def _leak(self, lm: LoadedModel, split: str, evaluation: dict) -> dict:
        rows, _, _ = self._forget_rows_and_parts(split)
        log = evaluation["logs"]["forget"]
        greedy = [log["generated_text"][k][1] for k in sorted(log["generated_text"], key=int)]
        proto = self.profile.protocol
        with _autocast(lm.model, proto.bf16):
            return regeneration_leak(lm.model, lm.tokenizer, rows, self.profile.robustness, proto.max_new_tokens,
                                     greedy=greedy if proto.compat == "tofu" else None)

    def robustness(self, lm: LoadedModel, split: str, evaluation: dict) -> dict:
        """relearn_recovery (unclipped; None when nothing was removed on the eval part), the gold control, and
        regeneration leakage of the unlearned model; wall times (the cell's own checks; the gold control, shared
        by a split's cells, is not counted) in ``relearn_s``, ``leak_s`` and ``robustness_s``."""
        control = self.relearn_control(split)
        t0 = time.time()
        _, attack_idx, eval_idx = self._forget_rows_and_parts(split)
        m_t = control["m_target"]
        m_u = float(self._forget_rouge_rows(evaluation)[eval_idx].mean())
        m_rel, _ = self._relearned_measure(lm.model, lm.tokenizer, split)
        t1 = time.time()
        out = {"relearn_recovery": recovery(m_rel, m_u, m_t), "relearn_control": control["relearn_control"],
               "attack_rows": attack_idx, "m_target": m_t, "m_unlearned": m_u, "m_relearned": m_rel,
               "control": control["control"], **self._leak(lm, split, evaluation)}
        out["relearn_s"], out["leak_s"] = round(t1 - t0, 2), round(time.time() - t1, 2)
        out["robustness_s"] = round(time.time() - t0, 2)
        return out

    def run_cell(self, method: str, split: str, overrides: dict | None = None) -> dict:
        spec = get_method(method)
        merged = {m: dict(v) for m, v in self.profile.method_overrides.items()}
        for m, fields in (overrides or {}).items():
            merged.setdefault(m, {}).update(fields)
        cfg, sched = make_config(method, merged), schedule_overrides(method, merged)
        start = time.time()
        target, gold = self.reference_eval("target", split), self.reference_eval("gold", split)
        method_stats, cost, dynamics, robust = None, None, None, None
        if method == "retrain":
            result = gold
            if self.profile.robustness is not None:  # the gold row's attack is the control itself
                gold_lm = self.load(self.gold_dir(split), adapters=False)
                robust = {**self.relearn_control(split, gold_lm), **self._leak(gold_lm, split, gold)}
        else:
            torch.manual_seed(self.seed)
            ctx = self.context(split, self.load(self.target_dir(split)), sched)
            t0, counter = time.time(), TokenCounter(ctx.lm.model)
            ctx.probe = self.dynamics_probe(split, ctx.lm, counter)
            with counter:
                lm = spec.run(ctx, cfg)
            dynamics = ctx.probe.points if ctx.probe is not None else None
            cost = {"unlearn_s": round(time.time() - t0, 2), "tokens": counter.tokens}
            method_stats = getattr(lm.model, "_unlearn_stats", None)
            lm = merged_for_evaluation(lm)
            result = self.evaluate(lm, split)
            if self.profile.robustness is not None:
                robust = self.robustness(lm, split, result)
        fq = forget_quality(forget_truth_ratios(result["logs"]["forget"]), forget_truth_ratios(gold["logs"]["forget"]))
        metrics = {**result["aggregates"], "forget_quality": fq, "extraction_strength": result["extraction_strength"],
                   **{f"mia_{k}": v for k, v in result["mia"].items()}}
        summary = summary_columns(target["aggregates"]["forget_rouge"], gold["aggregates"]["forget_rouge"],
                                  metrics["forget_rouge"], target["aggregates"]["model_utility"],
                                  metrics["model_utility"], result["mia"]["min_k_plus_plus_auc"])
        references = {kind: {"forget_rouge": ev["aggregates"]["forget_rouge"], "model_utility": ev["aggregates"]["model_utility"]}
                      for kind, ev in (("target", target), ("gold", gold))}
        if robust is not None:
            clip = lambda x: None if x is None else min(1.0, max(0.0, x))  # noqa: E731  (clipped only in the summary)
            metrics.update({k: robust[k] for k in ("relearn_recovery", "relearn_control", "regen_leak", "regen_exact")})
            # > 0: the forgotten answers come back faster than k rows teach a model that never saw them
            metrics["relearn_excess"] = (None if robust["relearn_recovery"] is None or robust["relearn_control"] is None
                                         else robust["relearn_recovery"] - robust["relearn_control"])
            summary.update({"relearn_recovery": clip(robust["relearn_recovery"]),
                            "relearn_control": clip(robust["relearn_control"]), "regen_leak": robust["regen_leak"]})
        return {"benchmark": "tofu", "method": method, "split": split, "summary": summary, "metrics": metrics,
                "references": references,
                "method_config": dataclasses.asdict(cfg), "method_stats": method_stats, "per_question": {**result["per_question"], "logs": result["logs"]},
                "model": {"name": self.model, "quant": self.quant, "lora": dataclasses.asdict(self.profile.lora) if self.profile.lora else None,
                          "target": self.target_dir(split).name, "gold": self.gold_dir(split).name},
                "data": self.identity(split), "protocol": self.profile.protocol.describe(),
                "protocol_name": self.profile.protocol.name, "compat": self.profile.protocol.compat, "notes": list(dict.fromkeys(self.notes)),
                "unlearn_schedule": {k: v for k, v in dataclasses.asdict(dataclasses.replace(self.profile.unlearn, **sched)).items()
                                     if k not in ("progress", "desc")},
                "cost": cost, "dynamics": dynamics, "robustness": robust,
                "target_eval": self.profile.target_eval, "precision": self.precision, "device": self.device, "numerics": numerics_info(self.device),
                "wall_s": round(time.time() - start, 2), "peak_memory_mb": round(peak_memory_mb(self.device), 1)}


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


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def summary_columns(m_target: float, m_gold: float, m_model: float, u_target: float, u_model: float, mia_auc: float) -> dict:
    """Forget efficacy = clip((m_t - m)/(m_t - m_g), 0, 1); retain performance = u/u_t; MIA AUC as is."""
    gap = m_target - m_gold
    efficacy = float(np.clip((m_target - m_model) / gap, 0, 1)) if gap > 0 else float("nan")
    retain = u_model / u_target if u_target > 0 else float("nan")
    return {"forget_efficacy": efficacy, "retain_performance": retain, "mia_auc": mia_auc}


def metric_snapshot(cell: dict) -> dict:
    """Small, sorted dict of named metrics rounded to 4 significant figures (for syrupy)."""
    keys = ["forget_rouge", "forget_prob", "forget_truth_ratio", "forget_quality", "model_utility",
            "extraction_strength", "mia_min_k_plus_plus_auc"]
    out = {k: round_sig(cell["metrics"][k]) for k in keys}
    out.update({k: round_sig(v) for k, v in cell["summary"].items()})
    return dict(sorted(out.items()))
