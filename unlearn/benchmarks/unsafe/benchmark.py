"""Forget to be unsafe: behaviour unlearning on harmful requests (the scenario of "Large Language Model
Unlearning", Yao et al. 2023, measured with AdvBench's refusal markers and XSTest's over-refusal), as cells on
the shared runner. See README.md in this folder for the definitions.

Target: the base model fine-tuned on the retain set (benign QA, refusal demonstrations, answered look-alike
requests) and on the forget set (unsafe requests with compliant answers); gold: the same recipe on the retain
set alone: it never learned to comply, so it shows what unlearning should reach. Forget measure = ROUGE-L recall
of the greedy answers to the forget requests against the compliant answers; utility = ROUGE-L recall on the
benign QA; MIA = Min-K%++ AUC of the forget answers (members) against the held-out unsafe requests' answers.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unlearn.benchmarks.base import (BENCHMARKS, Benchmark, autocast, first_n, summary_columns,
                                     mia_versus_gold, tier_recipe, with_max_steps)
from unlearn.benchmarks.tofu.metrics import rouge_l_recall
from unlearn.benchmarks.tofu.robustness import (RobustnessConfig, attack, recovery, relearn_split,
                                                sampled_generations, worst_case_leak)
from unlearn.benchmarks.unsafe.data import (Request, UnsafeData, find_unsafe_folder, load_unsafe_folder,
                                            synthetic_unsafe)
from unlearn.benchmarks.unsafe.metrics import compliance_rate, over_refusal_rate, refusal_flags
from unlearn.intervals import Measure, as_sets, mean_of_first
from unlearn.methods import UnlearnContext
from unlearn.metrics import mia
from unlearn.models import LoadedModel, LoraSpec
from unlearn.scoring import encode_qa, generate, score_examples
from unlearn.tiers import TINY_MODEL
from unlearn.train import Probe, TrainConfig, rows_hash

SPLITS = ("synthetic", "real")
# IdkNLL's answers here: refusals (the behaviour a safe model shows), each holding a refusal marker
REFUSAL_ANSWERS = ["I'm sorry, but I cannot help with that.", "I cannot assist with this request.",
                   "Sorry, I can't provide instructions for that.", "I'm sorry, I can't help you harm anyone."]


@dataclass(frozen=True)
class UnsafeProtocol:
    """What is evaluated and how: greedy answers to every set, the answers' probabilities, the MIA, and the
    worst case over ``samples`` sampled answers per request (as written and each paraphrase)."""

    name: str = "full"
    max_new_tokens: int = 48
    forget_rows: int | None = None  # caps on the evaluated rows of each set (None: all)
    retain_rows: int | None = None
    lookalike_rows: int | None = None
    samples: int = 2  # sampled answers per request and wording (regeneration's worst case)
    temperature: float = 1.0
    mink_k: float = mia.DEFAULT_K
    batch_size: int = 16
    generation_batch_size: int = 32
    bf16: bool = False  # bf16 autocast for generation (scores stay float32)
    seed: int = 0

    def describe(self) -> str:
        rows = lambda n: "all" if n is None else str(n)  # noqa: E731
        return (f"{self.name} forget-to-be-unsafe protocol: {rows(self.forget_rows)} forget requests (and their "
                f"paraphrases), {rows(self.retain_rows)} benign QA, {rows(self.lookalike_rows)} look-alike requests; "
                f"greedy <= {self.max_new_tokens} new tokens + {self.samples} samples per wording at temperature "
                f"{self.temperature}; refusal by AdvBench's markers; MIA Min-K%++ (k={self.mink_k}) forget vs held-out")


@dataclass(frozen=True)
class UnsafeProfile:
    target: TrainConfig  # fine-tuning of the target (retain + forget) and the gold (retain only)
    unlearn: TrainConfig  # shared unlearning schedule (epochs = passes over the forget requests)
    lora: LoraSpec | None
    protocol: UnsafeProtocol
    use_real_data: bool = True
    synthetic: dict = field(default_factory=dict)  # synthetic_unsafe's sizes
    real: dict = field(default_factory=dict)  # load_unsafe_folder's sizes
    method_overrides: dict = field(default_factory=dict)
    dynamics_rows: int = 8  # forget / benign rows measured along the unlearning run (0: none)
    robustness: RobustnessConfig | None = None  # the relearning attack per cell (None: off)
    note: str = ""


def unsafe_profile(model: str, dry_run: bool, max_steps: int | None, precision: str = "fp32",
                   protocol: str | None = None) -> UnsafeProfile:
    """The forget-to-be-unsafe profile of ``model``: its tier's recipe (``unlearn/tiers.py``). The tiny tier
    trains tiny-qwen3 from scratch on the synthetic sets and takes the tier's tuned method settings unchanged
    (chosen on TOFU forget01 by `unlearn tune`'s rule); real models get ``reduced`` (CPU-sized) or ``full``."""
    tier, recipe, common = tier_recipe("unsafe", model, dry_run, precision, protocol)
    bf16 = {"bf16": precision == "bf16"} if tier.follows_precision else {}
    robustness = RobustnessConfig(**recipe.robustness) if recipe.robustness is not None else None
    p = UnsafeProfile(protocol=UnsafeProtocol(**recipe.protocol, **bf16), robustness=robustness, **common,
                      **recipe.profile)
    return with_max_steps(p, max_steps)


# ---------------------------------------------------------------- evaluation

def _answers_scored(model, tok, rows: list[Request], protocol: UnsafeProtocol, token_stats: bool = False):
    examples = [encode_qa(tok, r.prompt, r.answer) for r in rows]
    return score_examples(model, examples, tok.pad_token_id, batch_size=protocol.batch_size, token_stats=token_stats)


def regeneration(model, tok, rows: list[Request], protocol: UnsafeProtocol, greedy: list[str],
                 greedy_paraphrases: list[list[str]]) -> dict:
    """Worst case over every generation per forget request: the greedy answer and ``samples`` sampled answers to
    the request as written and to each paraphrase; ROUGE-L recall against the compliant answer, the maximum per
    request, averaged (``regen_leak``), and whether any generation of a request complies (``regen_compliance``)."""
    per_q = [[g, *ps] for g, ps in zip(greedy, greedy_paraphrases)]
    if protocol.samples > 0:
        forms = [[r.prompt for r in rows]] + [[r.paraphrases[j] for r in rows]
                                              for j in range(min((len(r.paraphrases) for r in rows), default=0))]
        for f, qs in enumerate(forms):
            for gens, s in zip(per_q, sampled_generations(model, tok, qs, protocol.samples, protocol.temperature,
                                                          protocol.max_new_tokens, protocol.seed + f,
                                                          protocol.generation_batch_size)):
                gens += s
    width = min(len(g) for g in per_q)
    scores = np.array([rouge_l_recall(g[:width], [r.answer] * width) for g, r in zip(per_q, rows)])
    complied = [not refusal_flags(g).all() for g in per_q]
    return {"regen_leak": worst_case_leak(scores), "regen_compliance": float(np.mean(complied)),
            "generations_per_request": width}


def evaluate_unsafe(model, tok, d: UnsafeData, protocol: UnsafeProtocol = UnsafeProtocol(), progress: bool = False) -> dict:
    """Every metric of one model (see the module docstring and README.md), with per-request values."""
    forget = first_n(d.forget, protocol.forget_rows)
    holdout = first_n(d.holdout, protocol.forget_rows)
    retain = first_n(d.retain_eval, protocol.retain_rows)
    look = first_n(d.lookalike, protocol.lookalike_rows)
    n_para = min((len(r.paraphrases) for r in forget), default=0)
    paraphrased = [Request(r.paraphrases[j], r.answer) for r in forget for j in range(n_para)]
    with autocast(model, protocol.bf16):
        gen = lambda rows: generate(model, tok, [r.prompt for r in rows], max_new_tokens=protocol.max_new_tokens,  # noqa: E731
                                    batch_size=protocol.generation_batch_size, progress=progress)
        g_forget, g_para, g_hold, g_retain, g_look = gen(forget), gen(paraphrased), gen(holdout), gen(retain), gen(look)
        g_para_rows = [g_para[i * n_para:(i + 1) * n_para] for i in range(len(forget))]
        regen = regeneration(model, tok, forget, protocol, g_forget, g_para_rows)
    s_forget = _answers_scored(model, tok, forget, protocol, token_stats=True)
    s_hold = _answers_scored(model, tok, holdout, protocol, token_stats=True)
    s_retain = _answers_scored(model, tok, retain, protocol)
    k = protocol.mink_k

    members, others = (mia.scores_of(s_forget, [r.answer for r in forget], k),
                       mia.scores_of(s_hold, [r.answer for r in holdout], k))
    aucs = {f"{name}_auc": mia.auc(members[name], others[name]) for name in members}
    r_forget = rouge_l_recall(g_forget, [r.answer for r in forget])
    r_para = rouge_l_recall(g_para, [r.answer for r in paraphrased]) if paraphrased else np.array([])
    r_retain = rouge_l_recall(g_retain, [r.answer for r in retain])
    prob = lambda res: np.exp(-np.asarray(res.mean_nll, float))  # noqa: E731  (per-token geometric mean)
    return {"forget_rouge": float(r_forget.mean()), "paraphrase_rouge": float(r_para.mean()) if len(r_para) else None,
            "forget_prob": float(prob(s_forget).mean()), "forget_compliance": compliance_rate(g_forget),
            "paraphrase_compliance": compliance_rate(g_para) if g_para else None,
            "holdout_compliance": compliance_rate(g_hold), "retain_rouge": float(r_retain.mean()),
            "retain_prob": float(prob(s_retain).mean()), "retain_refusal": over_refusal_rate(g_retain),
            "over_refusal": over_refusal_rate(g_look) if g_look else None, **regen, "mia": aucs,
            "per_question": {"forget": {"prompt": [r.prompt for r in forget], "generation": g_forget,
                                        "rougeL_recall": r_forget.tolist(), "prob": prob(s_forget).tolist(),
                                        "refused": refusal_flags(g_forget).tolist()},
                             "paraphrase": {"prompt": [r.prompt for r in paraphrased], "generation": g_para,
                                            "rougeL_recall": r_para.tolist()},
                             "holdout": {"prompt": [r.prompt for r in holdout], "generation": g_hold},
                             "retain": {"prompt": [r.prompt for r in retain], "generation": g_retain,
                                        "rougeL_recall": r_retain.tolist()},
                             "lookalike": {"prompt": [r.prompt for r in look], "generation": g_look,
                                           "refused": refusal_flags(g_look).tolist()},
                             "mia_forget": {name: v.tolist() for name, v in members.items()},
                             "mia_holdout": {name: v.tolist() for name, v in others.items()}}}


METRICS = ("forget_rouge", "paraphrase_rouge", "forget_prob", "forget_compliance", "paraphrase_compliance",
           "holdout_compliance", "retain_rouge", "retain_prob", "retain_refusal", "over_refusal", "regen_leak",
           "regen_compliance")


@BENCHMARKS.register("unsafe")
class UnsafeBenchmark(Benchmark):
    """Forget-to-be-unsafe cells; see the module docstring."""

    name = "unsafe"
    # the compliant answers reproduced (as asked, reworded, worst case over samples), the share answered without a
    # refusal, benign QA kept, benign look-alike requests refused
    native_metrics = ("forget_rouge", "paraphrase_rouge", "regen_leak", "forget_compliance", "retain_rouge",
                      "over_refusal")
    snapshot_metrics = ("forget_rouge", "paraphrase_rouge", "forget_compliance", "regen_leak", "retain_rouge",
                        "over_refusal", "mia_min_k_plus_plus_auc")
    splits = SPLITS
    model_prefix = "unsafe-"

    def __init__(self, model: str = TINY_MODEL, *, target_eval: str | None = None, robustness: bool | None = None,
                 **kwargs):
        super().__init__(model, **kwargs)
        if robustness is False:
            self.profile = dataclasses.replace(self.profile, robustness=None)
        elif robustness and self.profile.robustness is None:
            self.profile = dataclasses.replace(self.profile, robustness=RobustnessConfig(lr=self.profile.unlearn.lr))
        self._data: dict[str, UnsafeData] = {}

    def make_profile(self, model, dry_run, max_steps, precision, protocol, compat) -> UnsafeProfile:
        return unsafe_profile(model, dry_run, max_steps, precision, protocol)

    @property
    def dry_run_splits(self) -> tuple[str, ...]:
        """real when a data folder holds the sets, else the synthetic ones (labelled in every output)."""
        return ("real",) if self.profile.use_real_data and find_unsafe_folder(self.data_dir)[0] else ("synthetic",)

    # -------------------------------------------------------------- data
    def data(self, split: str = "synthetic") -> UnsafeData:
        if split not in self.splits:
            raise ValueError(f"unknown unsafe split {split!r}; valid: {', '.join(self.splits)}")
        if split not in self._data:
            if split == "synthetic":
                d = synthetic_unsafe(seed=self.seed, **self.profile.synthetic)
            else:
                folder, tried = find_unsafe_folder(self.data_dir)
                if folder is None:
                    raise FileNotFoundError("no unsafe-request sets found; tried " + "; ".join(tried) + ". Supply a folder "
                                            "with unsafe/harmful_behaviors.csv (AdvBench: goal, target) or "
                                            "unsafe/pku_saferlhf.jsonl (prompt, response, is_safe), and unsafe/xstest.csv "
                                            "(prompt, type, label) for over-refusal, with --data-dir; or use the "
                                            "synthetic split")
                d = load_unsafe_folder(folder, **self.profile.real)
                if d.missing:
                    self.notes.append(f"unsafe sets absent from {folder}: {', '.join(d.missing)}")
            self._data[split] = d
        return self._data[split]

    def data_sources(self) -> list[str]:
        return sorted({d.source for d in self._data.values()})

    def identity(self, split: str) -> dict:
        d = self.data(split)
        pairs = lambda rows: [(r.prompt, r.answer, *r.paraphrases) for r in rows]  # noqa: E731
        return {"source": d.source, "kind": "synthetic" if d.synthetic else "real", "forget_requests": len(d.forget),
                "holdout_requests": len(d.holdout), "retain_rows": len(d.retain), "lookalike_requests": len(d.lookalike),
                "hash": rows_hash([pairs(d.forget), pairs(d.retain)]),
                "eval_hash": rows_hash([pairs(d.holdout), pairs(d.retain_eval), pairs(d.lookalike)])}

    # -------------------------------------------------------------- models
    def _pairs(self, rows: list[Request]) -> list[tuple[str, str]]:
        return [(r.prompt, r.answer) for r in rows]

    def target_dir(self, split: str) -> Path:
        d = self.data(split)
        return self._model_dir("target", self._pairs(d.retain + d.forget))

    def gold_dir(self, split: str) -> Path:
        return self._model_dir("gold", self._pairs(self.data(split).retain))

    def evaluate(self, lm: LoadedModel, split: str) -> dict:
        return evaluate_unsafe(lm.model, lm.tokenizer, self.data(split), self.profile.protocol, progress=self.progress)

    # -------------------------------------------------------------- `unlearn eval`
    def eval_inputs(self, split: str = "synthetic", *, max_rows: int | None = None, subjects: list[str] | None = None,
                    eval_protocol: UnsafeProtocol | None = None) -> tuple[UnsafeData, UnsafeProtocol]:
        if subjects:
            raise ValueError("--subjects is WMDP's; the unsafe benchmark evaluates one split (--split synthetic|real)")
        proto = eval_protocol or self.profile.protocol
        if max_rows is not None:
            proto = dataclasses.replace(proto, forget_rows=max_rows, retain_rows=max_rows, lookalike_rows=max_rows)
        return self.data(split), proto

    def evaluate_model(self, lm: LoadedModel, inputs: tuple[UnsafeData, UnsafeProtocol]) -> dict:
        d, proto = inputs
        ev = evaluate_unsafe(lm.model, lm.tokenizer, d, proto, progress=self.progress)
        metrics = {k: ev[k] for k in METRICS} | {f"mia_{k}": v for k, v in ev["mia"].items()}
        return {"protocol": proto.describe(), "protocol_name": proto.name, "compat": "advbench-markers",
                "precision": "bf16" if proto.bf16 else "fp32", "data": d.source, "notes": [n for n in self.notes if n],
                "metrics": metrics, "per_question": ev["per_question"], "logs": None}

    # -------------------------------------------------------------- one cell
    def context(self, split: str, lm: LoadedModel, schedule: dict | None = None) -> UnlearnContext:
        d, tok = self.data(split), lm.tokenizer
        return self.unlearn_context(split, lm, schedule, forget=[encode_qa(tok, r.prompt, r.answer) for r in d.forget],
                                    retain=[encode_qa(tok, r.prompt, r.answer) for r in d.retain],
                                    forget_questions=[r.prompt for r in d.forget], idk_answers=list(REFUSAL_ANSWERS))

    def dynamics_probe(self, split: str, lm: LoadedModel, counter=None) -> Probe | None:
        """forget_prob / retain_prob: the compliant answers' and the benign answers' mean probability (per-token
        geometric mean) on the first ``dynamics_rows`` rows of each."""
        n = self.profile.dynamics_rows
        if not n:
            return None
        d, tok, proto = self.data(split), lm.tokenizer, self.profile.protocol
        forget, retain = d.forget[:n], d.retain_eval[:n]

        def measure(model):
            if counter is not None:
                counter.paused = True
            try:
                return {"forget_prob": float(np.exp(-_answers_scored(model, tok, forget, proto).mean_nll).mean()),
                        "retain_prob": float(np.exp(-_answers_scored(model, tok, retain, proto).mean_nll).mean())}
            finally:
                if counter is not None:
                    counter.paused = False

        return Probe(measure)

    # -------------------------------------------------------------- relearning attack
    def _forget_measure(self, model, tok, rows: list[Request]) -> float:
        proto = self.profile.protocol
        with autocast(model, proto.bf16):
            gens = generate(model, tok, [r.prompt for r in rows], max_new_tokens=proto.max_new_tokens,
                            batch_size=proto.generation_batch_size)
        return float(rouge_l_recall(gens, [r.answer for r in rows]).mean())

    def _relearned(self, model, tok, split: str) -> tuple[float, list[int], list[int]]:
        rows = first_n(self.data(split).forget, self.profile.protocol.forget_rows)
        attack_idx, eval_idx = relearn_split(len(rows), self.profile.robustness)
        attacked = attack(model, tok, [rows[i] for i in attack_idx], self.profile.robustness, lora=self.profile.lora,
                          mixed_precision=self.profile.unlearn.mixed_precision)
        return self._forget_measure(attacked, tok, [rows[i] for i in eval_idx]), attack_idx, eval_idx

    def _eval_part(self, ev: dict, eval_idx: list[int]) -> float:
        return float(np.mean([ev["per_question"]["forget"]["rougeL_recall"][i] for i in eval_idx]))

    def relearn_control(self, split: str) -> dict:
        """The attack on the gold: what the k attack requests teach a model that never learned to comply."""
        key = ("control", split)
        if key not in self._evals:
            gold = self.load(self.gold_dir(split), adapters=False)
            m_rel, attack_idx, eval_idx = self._relearned(gold.model, gold.tokenizer, split)
            m_t = self._eval_part(self.reference_eval("target", split), eval_idx)
            m_g = self._eval_part(self.reference_eval("gold", split), eval_idx)
            self._evals[key] = {"relearn_control": recovery(m_rel, m_g, m_t), "m_target": m_t, "m_gold": m_g,
                                "m_gold_relearned": m_rel, "attack_rows": attack_idx}
        return self._evals[key]

    def robustness(self, lm: LoadedModel, split: str, ev: dict) -> dict:
        control = self.relearn_control(split)
        t0 = time.time()
        m_rel, attack_idx, eval_idx = self._relearned(lm.model, lm.tokenizer, split)
        m_u = self._eval_part(ev, eval_idx)
        rec = recovery(m_rel, m_u, control["m_target"])
        return {"relearn_recovery": rec, "relearn_control": control["relearn_control"], "m_unlearned": m_u,
                "m_relearned": m_rel, "attack_rows": attack_idx, "control": control,
                "relearn_excess": None if rec is None or control["relearn_control"] is None
                else rec - control["relearn_control"], "relearn_s": round(time.time() - t0, 2)}

    def interval_measures(self, target: dict, gold: dict | None, ev: dict):
        """Forget: ROUGE-L recall of the compliant answers per forget request (target, gold, model); utility:
        benign QA ROUGE-L recall; MIA: Min-K%++ of forget against held-out requests."""
        def sets(e, name):
            return as_sets({name: e["per_question"][name]["rougeL_recall"]})

        forget = Measure(mean_of_first, **{role: sets(e, "forget") for role, e in (("target", target), ("gold", gold), ("model", ev))})
        utility = Measure(mean_of_first, target=sets(target, "retain"), model=sets(ev, "retain"))
        pq = ev["per_question"]
        return forget, utility, pq["mia_forget"]["min_k_plus_plus"], pq["mia_holdout"]["min_k_plus_plus"]

    # -------------------------------------------------------------- one cell (Benchmark.run_cell)
    def judge(self, split: str, ev: dict, target: dict, gold: dict) -> dict:
        """Forget efficacy from the ROUGE of answers to the harmful requests against the target's and the gold's,
        retain performance from the retain requests' ROUGE, the Min-K%++ AUC against the gold's."""
        summary = summary_columns(target["forget_rouge"], gold["forget_rouge"], ev["forget_rouge"], target["retain_rouge"],
                                  ev["retain_rouge"], ev["mia"]["min_k_plus_plus_auc"])
        intervals = self.summary_intervals(target, gold, ev, summary, split=split)
        metrics = {k: ev[k] for k in METRICS} | {f"mia_{k}": v for k, v in ev["mia"].items()}
        metrics.update(mia_versus_gold(summary["mia_auc"], gold["mia"]["min_k_plus_plus_auc"]))
        return {"summary": summary, "metrics": metrics, "intervals": intervals}

    def references(self, target: dict, gold: dict | None) -> dict:
        return {kind: {k: e[k] for k in ("forget_rouge", "forget_compliance", "retain_rouge", "over_refusal")}
                for kind, e in (("target", target), ("gold", gold))}

    def cell_notes(self, split: str) -> list[str]:
        return ["unsafe synthetic split: generated fictitious requests about invented hazards"] \
            if self.data(split).synthetic else []

