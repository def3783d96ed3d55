"""TOFU (Maini et al. 2024, fictitious authors): the evaluator (every split scored, TOFU-format logs, ES
and MIA), the recipes per model (``profile_for``) and the cells: target fine-tuned on full, gold on
retainNN, forget measure = forget ROUGE-L recall, utility = Model Utility, MIA = Min-K%++ AUC."""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from unlearn.benchmarks.tofu.data import QA_PER_AUTHOR, TUNE_SPLIT, TofuData, TofuRow, find_tofu_source, load_tofu, synthetic_tofu
from unlearn.metrics import mia
from unlearn.benchmarks.tofu.metrics import SplitScores, aggregate, extraction_strength, rouge_l_recall, to_log
from unlearn.benchmarks.tofu.metrics import forget_quality_of_logs, model_utility_of_means, utility_terms
from unlearn.benchmarks.base import (BENCHMARKS, Benchmark, autocast, TokenCounter,
                                     mia_versus_gold, summary_columns, tier_recipe, with_max_steps)
from unlearn.intervals import Measure, as_sets, mean_of_first
from unlearn.methods import UnlearnContext
from unlearn.models import LoadedModel, LoraSpec
from unlearn.benchmarks.tofu.protocol import COMPATS, PROTOCOL_NAMES, EvalProtocol, protocol_preset, rouge_reference, sized_for
from unlearn.benchmarks.tofu.robustness import RobustnessConfig, attack, forget_measure, recovery, regeneration_leak, relearn_split
from unlearn.scoring import bf16_weights_under_autocast, encode_qa, format_prompt, generation, score_examples
from unlearn.scoring.generation import batch_order, decode_batch, finish_text, question_prompts
from unlearn.scoring.lanes import in_lanes
from unlearn.tiers import TINY_MODEL
from unlearn.train import Probe, TrainConfig


def split_texts(rows: list[TofuRow], answers_only: bool = False) -> tuple[list[tuple[str, str]], bool, int]:
    """(question, text) pairs scored for a split: answers, paraphrases (when every row has one), then k
    perturbed answers per row (k = the fewest any row has); with ``answers_only`` the answers alone (k = 0)."""
    if answers_only:
        return [(r.question, r.answer) for r in rows], False, 0
    has_para = all(r.paraphrased_answer for r in rows)
    k = min(len(r.perturbed_answers) for r in rows)
    texts = [(r.question, r.answer) for r in rows]
    texts += [(r.question, r.paraphrased_answer) for r in rows] if has_para else []
    texts += [(r.question, p) for r in rows for p in r.perturbed_answers[:k]]
    return texts, has_para, k


def split_scores(rows: list[TofuRow], res, has_para: bool, k: int, prompts: list[str], gens: list[str],
                 references: list[str] | None = None) -> SplitScores:
    """``k`` = 0: the answers alone were scored (no truth ratio)."""
    n = len(rows)
    gt, para = res.take(0, n), res.take(n, 2 * n) if has_para else None
    if k == 0:
        return SplitScores(gt, para, None, None, None, prompts, gens, references or [r.answer for r in rows])
    pert = res.take(res.n_tokens.size - n * k, res.n_tokens.size)
    return SplitScores(gt, para, pert.mean_nll.reshape(n, k), (-pert.logprob_sum).reshape(n, k),
                       pert.n_tokens.reshape(n, k), prompts, gens, references or [r.answer for r in rows])


@contextmanager
def _cacheable_weights(model, enabled: bool):
    """Autocast keeps its bf16 copy of a weight for the whole context only when the weight is a leaf that
    requires grad; frozen weights (a merged LoRA model's base, say) would be cast again at every forward,
    which made each greedy decoding step about twice as slow. Evaluation runs under no_grad, so marking
    the float weights as requiring grad for its duration builds no graph; the flags are restored after."""
    params = [p for p in model.parameters() if enabled and p.is_floating_point() and not p.requires_grad]
    for p in params:
        p.requires_grad_(True)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(False)


def evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol = EvalProtocol(), progress: bool = True,
                  reference_only: bool = False) -> dict:
    """The full evaluation, or with ``reference_only`` just what a target contributes to the summary
    columns (forget ROUGE and Model Utility; see ``reference_aggregates``)."""
    if protocol.compat not in COMPATS:
        raise ValueError(f"unknown compatibility mode {protocol.compat!r}; valid: {', '.join(COMPATS)}")
    with _cacheable_weights(model, protocol.bf16):
        if reference_only:
            return reference_aggregates(model, tok, data, protocol, progress)
        return _evaluate_tofu(model, tok, data, protocol, progress)



def _protocol_splits(data: TofuData, protocol: EvalProtocol) -> dict[str, list[TofuRow]]:
    n = protocol.max_rows
    return {"forget": data.forget[:n], "retain": data.retain_eval[: protocol.retain_rows or n],
            "real_authors": data.real_authors[: protocol.utility_rows or n],
            "world_facts": data.world_facts[: protocol.utility_rows or n]}


LANES = True  # a float32 CPU evaluation's scoring and generation batches in two lanes (``_score_and_generate``)


def _score_and_generate(model, tok, splits: dict[str, list[TofuRow]], scored: list[str], protocol: EvalProtocol,
                        progress: bool, holdout: list[TofuRow] = ()):
    """Every text of the ``scored`` splits (then the ``holdout`` answers) in one scoring call, so a question's
    prompt is computed once for its answer, paraphrase and perturbed answers and batches stay full across
    splits; greedy answers to every split's questions in one generation call (open-unlearning: one per
    split, as that tool batches them). Returns (TOFU logs of the scored splits, the scores, the generations
    in ``splits`` order, each scored part's span in the scores). Token statistics (Min-K%++, ES) are kept
    for the forget answers and the holdout. Scores run in float32 unless ``protocol.score_bf16``."""
    texts, stats, spans, layout = [], [], {}, {}
    for name in scored:
        t, has_para, k = split_texts(splits[name], answers_only=name == "forget" and not protocol.forget_truth_ratio)
        spans[name], layout[name] = (len(texts), len(texts) + len(t)), (has_para, k)
        stats += [name == "forget" and i < len(splits[name]) for i in range(len(t))]
        texts += t
    spans["holdout"] = (len(texts), len(texts) + len(holdout))
    texts += [(r.question, r.answer) for r in holdout]
    stats += [True] * len(holdout)
    ou = protocol.open_unlearning
    examples = [encode_qa(tok, q, a, style=protocol.compat) for q, a in texts]
    device = next(model.parameters()).device

    def score():
        with autocast(model, protocol.score_bf16):
            return score_examples(model, examples, tok.pad_token_id, batch_size=protocol.batch_size, token_stats=stats,
                                  progress=progress, desc="score", hide_token=tok.pad_token_id if ou else None)

    # greedy answers: open-unlearning batches each split's questions on their own, in data order; TOFU's all at
    # once, by length (``generate``'s batches, one job each)
    asked = question_prompts(tok, [r.question for rows in splits.values() for r in rows], protocol.compat)
    bounds = np.cumsum([0] + [len(rows) for rows in splits.values()]).tolist()
    parts = [list(range(a, b)) for a, b in zip(bounds, bounds[1:])] if ou else [list(range(len(asked)))]
    batch = protocol.generation_batch_size or protocol.batch_size
    batches = [[part[i] for i in idx] for part in parts for idx in batch_order([asked[i] for i in part], batch, ou)]
    bar = tqdm(total=len(batches), desc="generate", disable=not progress, leave=False)

    def answer(idx):
        def job():
            with torch.no_grad(), autocast(model, protocol.bf16):
                texts = decode_batch(model, tok, asked, idx, max_new_tokens=protocol.max_new_tokens, device=device,
                                     hide_pad=ou, engine=generation.ENGINE)
            bar.update(1)
            return texts
        return job

    was_training = model.training
    model.eval()
    try:
        if LANES and device.type == "cpu" and not (protocol.bf16 or protocol.score_bf16):
            # float32 on a CPU: the scoring and each generation batch are jobs for two lanes (unlearn.scoring.lanes)
            res, *decoded = in_lanes([score] + [answer(idx) for idx in batches], enabled=True)
        else:
            # bf16 passes swap the frozen weights' bf16 copies in and out of the shared model: one after the other
            res = score()
            with autocast(model, protocol.bf16), bf16_weights_under_autocast(model):
                decoded = [answer(idx)() for idx in batches]
    finally:
        model.train(was_training)
        bar.close()
    gens = [""] * len(asked)
    for idx, texts in zip(batches, decoded):
        for i, text in zip(idx, texts):
            gens[i] = finish_text(text, protocol.compat)
    starts = dict(zip(splits, bounds))
    logs = {}
    for name in scored:
        rows, at = splits[name], starts[name]
        prompts = [format_prompt(tok, r.question) for r in rows]
        refs = [rouge_reference(tok, r, protocol) for r in rows]
        logs[name] = to_log(split_scores(rows, res.take(*spans[name]), *layout[name], prompts, gens[at: at + len(rows)], refs))
    return logs, res, gens, spans


def reference_aggregates(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """The target's share of a cell: forget ROUGE-L recall (efficacy's reference) and Model Utility (retain
    performance's), computed exactly as in the full evaluation (same rows, same greedy generations, same
    scores of the utility splits) without the forget paraphrase/perturbed answers, the holdout and the
    token statistics that only the evaluated model's own row needs: about a third of the work."""
    splits = _protocol_splits(data, protocol)
    logs, _, gens, _ = _score_and_generate(model, tok, splits, ["retain", "real_authors", "world_facts"], protocol,
                                           progress)
    forget_rouge = rouge_l_recall(gens[: len(splits["forget"])], [rouge_reference(tok, r, protocol) for r in splits["forget"]])
    return {"logs": logs, "aggregates": {**aggregate(logs), "forget_rouge": float(np.mean(forget_rouge))},
            "forget_rouge_rows": [float(x) for x in forget_rouge], "forget_generated": gens[: len(splits["forget"])],
            "reference_only": True}


def target_answers(ev: dict) -> dict:
    """The target's forget answers and their ROUGE-L recall, per question (for the report's drill-down), from a
    full or a reference-only evaluation; None where the evaluation did not keep them."""
    if ev.get("reference_only"):
        return {"generated_text": ev.get("forget_generated"), "rougeL_recall": ev.get("forget_rouge_rows")}
    forget = ev["logs"].get("forget", {})
    texts, rouge = forget.get("generated_text") or {}, forget.get("rougeL_recall") or {}
    return {"generated_text": [texts[k][1] for k in sorted(texts, key=int)] or None,
            "rougeL_recall": [rouge[k] for k in sorted(rouge, key=int)] or None}


def _evaluate_tofu(model, tok, data: TofuData, protocol: EvalProtocol, progress: bool) -> dict:
    """{"logs": TOFU-format per-split logs, "aggregates": TOFU's numbers (no FQ), "extraction_strength",
    "mia": AUCs of forget vs holdout, "per_question": ES and MIA scores per row}."""
    splits = _protocol_splits(data, protocol)
    holdout = data.holdout[: len(splits["forget"])]
    logs, res, _, spans = _score_and_generate(model, tok, splits, list(splits), protocol, progress, holdout)
    forget_gt, hold = res.take(spans["forget"][0], spans["forget"][0] + len(splits["forget"])), res.take(*spans["holdout"])
    if protocol.open_unlearning:  # its MIA and ES paths drop the last scored token (the appended EOS)
        forget_gt, hold = _drop_last_token(forget_gt), _drop_last_token(hold)
    members = mia.scores_of(forget_gt, [r.answer for r in splits["forget"]], protocol.mink_k)
    others = mia.scores_of(hold, [r.answer for r in holdout], protocol.mink_k)
    es = extraction_strength(forget_gt.token_correct, floor_one_token=protocol.open_unlearning)
    return {
        "logs": logs,
        "aggregates": aggregate(logs),
        "extraction_strength": float(es.mean()),
        "mia": {f"{k}_auc": mia.auc(members[k], others[k]) for k in members},
        "per_question": {"forget_extraction_strength": es.tolist(),
                         "mia_forget": {k: v.tolist() for k, v in members.items()},
                         "mia_holdout": {k: v.tolist() for k, v in others.items()}},
    }


def _drop_last_token(res):
    """Token statistics without each example's last scored token (LOSS and ZLib keep the whole span)."""
    return dataclasses.replace(res, token_logprobs=[t[:-1] for t in res.token_logprobs], token_mu=[t[:-1] for t in res.token_mu],
                      token_sigma=[t[:-1] for t in res.token_sigma], token_correct=[t[:-1] for t in res.token_correct])


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
    dynamics_rows: tuple[int, int] = (40, 20)  # the reduced protocol: (40, 10), the rows its evaluation scores
    # relearning attack + regeneration leakage per cell (unlearn/benchmarks/tofu/robustness.py); None: off
    robustness: RobustnessConfig | None = None


def profile_for(model: str, dry_run: bool, max_steps: int | None, precision: str = "fp32", protocol: str | None = None,
                compat: str = "tofu", device: str | None = None) -> Profile:
    """The TOFU profile of ``model``: its tier's recipe (``unlearn/tiers.py``; documented in docs/guide.md,
    "Recipes"). ``protocol``: ``reduced`` (the dry run's default) or ``full`` (the published one; the default
    otherwise) for real models; the tiny tier has its own. ``max_steps`` caps unlearning steps; ``precision``
    (fp32 or bf16, already resolved from the hardware) sets autocast for training and evaluation of the
    real-model profiles (full protocol: scores stay float32); the tiny tier is float32 unless bf16 is asked for
    explicitly. ``compat``: evaluation conventions (``tofu`` or ``open-unlearning``; the latter keeps that tool's
    scoring batches whatever the recipe's). ``device``: a CPU takes the full protocol's CPU generation batch
    (``sized_for``); None keeps the recipe's."""
    protocol = protocol or ("reduced" if dry_run else "full")
    if protocol not in PROTOCOL_NAMES:
        raise ValueError(f"unknown protocol {protocol!r}; valid: {', '.join(PROTOCOL_NAMES)}")
    mp, bf16 = ("bf16", True) if precision == "bf16" else ("no", False)
    tier, recipe, common = tier_recipe("tofu", model, dry_run, precision, protocol)
    if tier.name == "tiny":
        proto = EvalProtocol(**recipe.protocol)
    else:
        proto = protocol_preset(protocol, compat, bf16)
        if compat == "tofu":
            proto = dataclasses.replace(proto, **recipe.protocol)
        proto = sized_for(proto, device)
    robustness = RobustnessConfig(**recipe.robustness) if recipe.robustness is not None else None
    p = Profile(protocol=proto, robustness=robustness, **common, **recipe.profile)
    if tier.name == "tiny" and compat != "tofu":
        p = dataclasses.replace(p, protocol=dataclasses.replace(p.protocol, compat=compat))
    if tier.name == "tiny" and bf16:
        p = dataclasses.replace(p, target=dataclasses.replace(p.target, mixed_precision=mp),
                                unlearn=dataclasses.replace(p.unlearn, mixed_precision=mp),
                                protocol=dataclasses.replace(p.protocol, bf16=True, score_bf16=True))
    return with_max_steps(p, max_steps)


@BENCHMARKS.register("tofu")
class TofuBenchmark(Benchmark):
    """TOFU cells: target fine-tuned on full, gold on retainNN; forget measure = forget ROUGE-L recall,
    utility = Model Utility, MIA = Min-K%++ AUC forget vs holdout."""

    name = "tofu"
    native_metrics = ("forget_rouge", "forget_prob", "forget_truth_ratio", "forget_quality", "model_utility",
                      "extraction_strength")
    snapshot_metrics = native_metrics + ("mia_min_k_plus_plus_auc",)
    splits = ("forget01", "forget05", "forget10")
    dry_run_splits = ("forget01",)
    tune_split = TUNE_SPLIT

    def __init__(self, model: str = TINY_MODEL, *, target_eval: str | None = None, robustness: bool | None = None,
                 **kwargs):
        super().__init__(model, **kwargs)
        if robustness is False:
            self.profile = dataclasses.replace(self.profile, robustness=None)
        elif robustness and self.profile.robustness is None:  # the dry run's: off unless asked for
            self.profile = dataclasses.replace(self.profile, robustness=RobustnessConfig(lr=self.profile.unlearn.lr))
        if target_eval is not None:
            if target_eval not in ("full", "reference"):
                raise ValueError(f"unknown target_eval {target_eval!r}; valid: full, reference")
            self.profile = dataclasses.replace(self.profile, target_eval=target_eval)
        self.data_place, self.data_tried = (find_tofu_source(self.data_dir) if self.profile.use_real_data else (None, []))
        self._data: dict[str, TofuData] = {}
        self._probe_starts: dict[str, dict] = {}  # split -> the dynamics probe's first point (Probe.start)
        passed_over = [t for t in self.data_tried if "=" in t.split(":")[0]]  # folders without TOFU files
        if passed_over and self.data_place is not None:
            self.notes.append(f"TOFU from {self.data_place} (passed over: {'; '.join(passed_over)})")

    def make_profile(self, model, dry_run, max_steps, precision, protocol, compat) -> "Profile":
        # the device decides the full protocol's generation batch; a recipe read without an instance has none
        return profile_for(model, dry_run, max_steps, precision, protocol, compat, getattr(self, "device", None))

    # -------------------------------------------------------------- data
    def data(self, split: str) -> TofuData:
        if split not in self.splits and split != self.tune_split:
            raise ValueError(f"unknown TOFU split {split!r}; valid: {', '.join(self.splits)} (and {self.tune_split!r}, "
                             "the tuning split)")
        if split not in self._data:
            if self.data_place is not None:
                d = load_tofu(split, self.data_place)
                if self.profile.real_slice_retain is not None:
                    d = dataclasses.replace(d, retain_train=d.retain_train[: self.profile.real_slice_retain])
            else:
                d = synthetic_tofu(split, self.profile.synthetic_authors, seed=self.seed)
            self._data[split] = d
        return self._data[split]

    def data_sources(self) -> list[str]:
        return sorted({self.identity(s)["source"] for s in self._data})

    def identity(self, split: str) -> dict:
        from unlearn.train import rows_hash

        d = self.data(split)
        return {"source": d.source, "kind": "synthetic" if d.source.startswith("synthetic") else "real",
                "train_rows": len(d.full), "forget_rows": len(d.forget),
                "hash": rows_hash([(r.question, r.answer) for r in d.full])}

    # -------------------------------------------------------------- models
    def target_dir(self, split: str) -> Path:
        return self._model_dir("target", [(r.question, r.answer) for r in self.data(split).full])

    def gold_dir(self, split: str) -> Path:
        return self._model_dir("gold", [(r.question, r.answer) for r in self.data(split).retain_train])

    # -------------------------------------------------------------- evaluation
    def evaluate(self, lm: LoadedModel, split: str, reference_only: bool = False) -> dict:
        return evaluate_tofu(lm.model, lm.tokenizer, self.data(split), self.profile.protocol, progress=self.progress,
                             reference_only=reference_only)

    def eval_inputs(self, split: str, *, max_rows: int | None = None, subjects: list[str] | None = None,
                    eval_protocol: EvalProtocol | None = None) -> tuple[TofuData, EvalProtocol]:
        """Real TOFU (a data folder, else the embedded copy) under the named protocol (``full`` unless asked),
        whatever the tier: a checkpoint is evaluated on the published questions."""
        if subjects:
            raise ValueError("--subjects is WMDP's; TOFU evaluates one split (--split forget01/05/10)")
        if split not in self.splits:
            raise ValueError(f"unknown TOFU split {split!r}; valid: {', '.join(self.splits)}")
        proto = eval_protocol or sized_for(protocol_preset(self.protocol_name or "full", self.compat,
                                                           bf16=self.precision == "bf16"), self.device)
        if max_rows is not None:
            proto = dataclasses.replace(proto, max_rows=max_rows, retain_rows=max_rows, utility_rows=max_rows)
        place, _ = find_tofu_source(self.data_dir)
        return load_tofu(split, place), proto

    def score_model(self, lm: LoadedModel, inputs: tuple[TofuData, EvalProtocol]) -> dict:
        data, proto = inputs
        return evaluate_tofu(lm.model, lm.tokenizer, data, proto, progress=self.progress)

    def eval_record(self, result: dict, inputs: tuple[TofuData, EvalProtocol]) -> dict:
        data, proto = inputs
        metrics = {**result["aggregates"], "extraction_strength": result["extraction_strength"],
                   **{f"mia_{k}": v for k, v in result["mia"].items()}}
        return {"split": data.split, "protocol": proto.describe(), "protocol_name": proto.name, "compat": proto.compat,
                "eval_protocol": dataclasses.asdict(proto), "precision": "bf16" if proto.bf16 else "fp32",
                "score_precision": "bf16" if proto.score_bf16 else "fp32", "data": data.source, "metrics": metrics,
                "per_question": result["per_question"], "logs": result["logs"]}

    def _reference_only(self, kind: str) -> bool:
        """The target evaluated on its reference rows only (``target_eval="reference"``)."""
        return kind == "target" and self.profile.target_eval == "reference"

    def reference_ident(self, kind: str, split: str) -> str:
        return super().reference_ident(kind, split) + ("|reference" if self._reference_only(kind) else "")

    def evaluate_reference(self, kind: str, split: str, lm: LoadedModel) -> dict:
        return self.evaluate(lm, split, self._reference_only(kind))

    # -------------------------------------------------------------- one cell
    def context(self, split: str, lm: LoadedModel, schedule: dict | None = None) -> UnlearnContext:
        """``schedule``: changes to the shared unlearning schedule for this method (``--set npo.lr=...``)."""
        d, tok = self.data(split), lm.tokenizer
        return self.unlearn_context(split, lm, schedule, forget=[encode_qa(tok, r.question, r.answer) for r in d.forget],
                                    retain=[encode_qa(tok, r.question, r.answer) for r in d.retain_train],
                                    forget_questions=[r.question for r in d.forget], idk_answers=d.idk)

    def dynamics_probe(self, split: str, lm: LoadedModel, counter: "TokenCounter | None" = None) -> Probe | None:
        """forget_prob / retain_prob (TOFU's Prob: mean over rows of exp(-answer NLL / tokens)) on the first
        rows of the forget split and of the retain evaluation rows: a cheap subset of the metrics, scored at the
        evaluation's precision. The first point (the target, before any step) is measured once per split and
        shared by every method; the last step's point is taken from the cell's evaluation when that scores the
        probe's rows (``probe_values``)."""
        n_forget, n_retain = self.profile.dynamics_rows
        if not n_forget or not n_retain:
            return None
        d, tok = self.data(split), lm.tokenizer
        forget = [encode_qa(tok, r.question, r.answer) for r in d.forget[:n_forget]]
        retain = [encode_qa(tok, r.question, r.answer) for r in d.retain_eval[:n_retain]]
        device = next(lm.model.parameters()).device
        evaluated = _protocol_splits(d, self.profile.protocol)
        covered = len(forget) <= len(evaluated["forget"]) and len(retain) <= len(evaluated["retain"])

        def measure(model):
            if counter is not None:  # the probe's forward passes are not the method's work
                counter.paused = True
            try:
                with autocast(model, self.profile.protocol.score_bf16):
                    res = score_examples(model, forget + retain, tok.pad_token_id, device=device)
            finally:
                if counter is not None:
                    counter.paused = False
            f, r = res.take(0, len(forget)), res.take(len(forget), len(forget) + len(retain))
            return {"forget_prob": float(np.exp(-f.mean_nll).mean()), "retain_prob": float(np.exp(-r.mean_nll).mean())}

        return Probe(measure, start=self._probe_starts.setdefault(split, {}), defer_final=covered)

    def probe_values(self, evaluation: dict) -> dict[str, float]:
        """The dynamics probe's measure read from an evaluation's per-question logs (its first rows)."""
        n_forget, n_retain = self.profile.dynamics_rows
        logs = evaluation["logs"]
        prob = lambda split, n: float(np.exp(-self._row_values(logs[split], "avg_gt_loss")[:n]).mean())  # noqa: E731
        return {"forget_prob": prob("forget", n_forget), "retain_prob": prob("retain", n_retain)}

    def mia_unit_size(self, split: str) -> int:
        """TOFU's forget and holdout rows come author by author, 20 questions each (real and synthetic alike)."""
        return QA_PER_AUTHOR

    def interval_measures(self, target: dict, gold: dict | None, ev: dict):
        """Forget: ROUGE-L recall per forget question (target, gold, model); utility: Model Utility from the
        (Prob, ROUGE, max(0, 1 - R)) terms of the retain, real-author and world-fact questions; MIA: Min-K%++."""
        forget = Measure(mean_of_first, **{role: as_sets({"forget": self._forget_rouge_rows(e)})
                                           for role, e in (("target", target), ("gold", gold), ("model", ev))})
        utility = Measure(model_utility_of_means, target=utility_terms(target["logs"]), model=utility_terms(ev["logs"]))
        pq = ev["per_question"]
        return forget, utility, pq["mia_forget"]["min_k_plus_plus"], pq["mia_holdout"]["min_k_plus_plus"]

    def judge(self, split: str, ev: dict, target: dict, gold: dict) -> dict:
        """Forget efficacy from ROUGE-L recall on the forget questions, retain performance from Model Utility, the
        Min-K%++ AUC against the gold's; Forget Quality (the KS test of the forget truth ratios against the gold's)."""
        fq = forget_quality_of_logs(ev["logs"]["forget"], gold["logs"]["forget"])
        metrics = {**ev["aggregates"], "forget_quality": fq, "extraction_strength": ev["extraction_strength"],
                   **{f"mia_{k}": v for k, v in ev["mia"].items()}}
        summary = summary_columns(target["aggregates"]["forget_rouge"], gold["aggregates"]["forget_rouge"],
                                  metrics["forget_rouge"], target["aggregates"]["model_utility"],
                                  metrics["model_utility"], ev["mia"]["min_k_plus_plus_auc"])
        intervals = self.summary_intervals(target, gold, ev, summary, split=split)
        metrics.update(mia_versus_gold(summary["mia_auc"], gold["mia"]["min_k_plus_plus_auc"]))
        return {"summary": summary, "metrics": metrics, "intervals": intervals}

    # -------------------------------------------------------------- robustness
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
        with autocast(attacked, proto.bf16):
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
        with autocast(lm.model, proto.bf16):
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

    # -------------------------------------------------------------- one cell (Benchmark.run_cell)
    robust_metrics = ("relearn_recovery", "relearn_control", "regen_leak", "regen_exact")
    robust_summary = ("relearn_recovery", "relearn_control", "regen_leak")

    def gold_robustness(self, split: str, gold: dict) -> dict | None:
        """The gold row's attack is the control itself, and its regeneration leak."""
        if self.profile.robustness is None:
            return None
        gold_lm = self.load(self.gold_dir(split), adapters=False)
        return {**self.relearn_control(split, gold_lm), **self._leak(gold_lm, split, gold)}

    def references(self, target: dict, gold: dict | None) -> dict:
        return {kind: {"forget_rouge": ev["aggregates"]["forget_rouge"], "model_utility": ev["aggregates"]["model_utility"]}
                for kind, ev in (("target", target), ("gold", gold))}

    def cell_per_question(self, ev: dict, target: dict) -> dict:
        return {**ev["per_question"], "logs": ev["logs"], "target_forget": target_answers(target)}

    def record_extras(self, split: str) -> dict:
        return {"compat": self.profile.protocol.compat, "target_eval": self.profile.target_eval}

