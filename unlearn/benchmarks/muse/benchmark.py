"""MUSE (Shi et al. 2024): the six criteria on News as cells. Target = the model trained on raw text
(every forget request's text + retain), gold_k = trained on retain + the requests after k (gold_1 is the
retrain of the main forget set), so each step of a scalability or sustainability cell has its own gold.

Splits: ``news`` (C1 VerbMem, C2 KnowMem forget, C3 PrivLeak, C4 utility = KnowMem retain), ``news-scal``
(C5: four unlearning runs from the target on growing forget sets) and ``news-sust`` (C6: four sequential
requests, each continuing from the previous model). The evaluation sets (VerbMem, KnowMem, PrivLeak) are
the first request's, as in MUSE, where they come from raw/forget = scal/forget_1 = sust/forget_1.

Summary columns (PROTOCOLS): forget measure = mean of VerbMem and KnowMem forget; utility = KnowMem
retain; MIA = Min-K%++ AUC (forget vs holdout texts, members score higher); PrivLeak beside it. Scal and
sust cells report their last step in the summary and every step in ``metrics["steps"]``.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from unlearn.benchmarks.base import (BENCHMARKS, Benchmark, autocast, first_n,
                                     fold_into_weights, method_settings, round_sig, run_method,
                                     mia_versus_gold, summary_columns, text_membership_scores,
                                     tier_recipe, with_max_steps)
from unlearn.benchmarks.muse.data import MuseData, VerbRow, QA, find_muse_source, headlines, load_muse_folder, \
    load_muse_hub, synthetic_muse
from unlearn.benchmarks.tofu.data import load_idk
from unlearn.intervals import Measure, as_sets, mean_of_first
from unlearn.methods import UnlearnContext
from unlearn.metrics import mia
from unlearn.benchmarks.muse.metrics import answer_settled, cut_answer, knowmem_prompt, muse_auc, privleak, rouge_l_f1
from unlearn.models import LoadedModel, LoraSpec
from unlearn.scoring import clean_up_tokenization, encode_text, generate_ids, score_examples
from unlearn.tiers import TINY_MODEL
from unlearn.train import Probe, TrainConfig



@dataclass(frozen=True)
class MuseSplit:
    """What a MUSE split unlearns, as data: one run on the main forget set (``news``), or a sequence of steps over
    the forget requests, each from the target on a growing forget set (``scal``: ``growing``) or from the last
    step's model on the next request (``sust``: ``continues``); ``step_key`` names a step in the cell's record."""

    name: str
    sequence: bool = False
    growing: bool = False
    continues: bool = False
    step_key: str = "size"


SPLIT_KINDS = {s.name: s for s in (MuseSplit("news"), MuseSplit("news-scal", sequence=True, growing=True),
                                   MuseSplit("news-sust", sequence=True, continues=True, step_key="request"))}
SPLITS = tuple(SPLIT_KINDS)
QUANTISED_SUST = ("MUSE sustainability continues from the merged unlearned weights; a 4-bit base cannot be merged "
                  "into (run news-sust without --quant)")


@dataclass(frozen=True)
class MuseProtocol:
    """How much is evaluated; the defaults are MUSE's (every row, 128 / 32 new tokens, whole texts)."""

    name: str = "full"
    verbmem_rows: int | None = None
    verbmem_new_tokens: int = 128
    verbmem_prompt_tokens: int | None = None  # keep the last N tokens of each prompt (None: all, as MUSE)
    knowmem_rows: int | None = None  # per KnowMem split
    knowmem_new_tokens: int = 32
    privleak_rows: int | None = None
    privleak_tokens: int | None = None  # score the first N tokens of each text (None: all)
    mink_k: float = mia.DEFAULT_K
    batch_size: int = 8
    generation_batch_size: int = 16
    bf16: bool = False  # bf16 autocast for generation (scores stay float32)

    def describe(self) -> str:
        rows = lambda n: "all" if n is None else str(n)  # noqa: E731
        prompt = "" if self.verbmem_prompt_tokens is None else f" (last {self.verbmem_prompt_tokens} prompt tokens)"
        text = "" if self.privleak_tokens is None else f" (first {self.privleak_tokens} tokens)"
        return (f"{self.name} MUSE protocol: VerbMem {rows(self.verbmem_rows)} rows{prompt}, greedy {self.verbmem_new_tokens} "
                f"tokens; KnowMem {rows(self.knowmem_rows)} QA per split, greedy {self.knowmem_new_tokens}; PrivLeak "
                f"{rows(self.privleak_rows)} texts{text}, Min-K% k={self.mink_k}")


@dataclass(frozen=True)
class MuseProfile:
    target: TrainConfig  # causal-LM training of target (all requests + retain) and golds (retain + later requests)
    unlearn: TrainConfig  # shared unlearning schedule (epochs = passes over the forget texts)
    lora: LoraSpec | None
    protocol: MuseProtocol
    text_length: int = 512  # training texts are cut to their first N tokens
    use_real_data: bool = True
    # reduced real-data protocol: windows of this many characters around what is evaluated (None: whole chunks)
    real_window: int | None = None
    real_rows: int | None = None  # reduced: VerbMem rows and KnowMem QA per split kept
    real_later_rows: int = 0  # reduced: windows per later request (0: one request, news only)
    synthetic: dict = field(default_factory=dict)  # synthetic_muse's size arguments (the tiny tier: its defaults)
    max_requests: int | None = None  # forget requests trained and unlearned (None: all; 1: news only)
    method_overrides: dict = field(default_factory=dict)
    dynamics_rows: tuple[int, int] = (8, 8)
    # a gold per step of news-scal / news-sust (retrain without requests 1..k). False: gold_1 (retrained
    # without request 1 only) is every step's reference and the retrain row's model; the evaluation sets are
    # request 1's, which no gold_k saw, so forget measures are alike, but utility and PrivLeak at step k > 1 are
    # those of gold_1 (the tiny tier, to keep `pytest evals -m muse` within its time; said in every cell's notes)
    step_golds: bool = True
    note: str = ""


def muse_profile(model: str, dry_run: bool, max_steps: int | None, precision: str = "fp32",
                 protocol: str | None = None) -> MuseProfile:
    """The MUSE profile of ``model``: its tier's recipe (``unlearn/tiers.py``). The tiny tier trains tiny-qwen3
    from scratch on the synthetic news and takes the tier's tuned method settings unchanged (chosen on TOFU
    forget01 by `unlearn tune`'s rule); real models get ``reduced`` (CPU: a slice of the real News, see
    ``reduce_real``; the dry run a smaller one) or ``full`` (MUSE's protocol)."""
    tier, recipe, common = tier_recipe("muse", model, dry_run, precision, protocol)
    bf16 = {"bf16": precision == "bf16"} if tier.follows_precision else {}
    p = MuseProfile(protocol=MuseProtocol(**recipe.protocol, **bf16), **common, **recipe.profile)
    return with_max_steps(p, max_steps)


# ---------------------------------------------------------------- the reduced real-data slice
_STOP = set("the a an of in to and is was what which who how did does for on at by with from that as be this are "
            "were has have why when where whom whose its their it".split())


def _keywords(question: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z0-9']+", question) if w.lower() not in _STOP and len(w) > 3]


def _window(text: str, at: int, width: int) -> str:
    start = max(0, min(at - width // 2, len(text) - width))
    return text[start: start + width]


def _answer_windows(qa: list[QA], texts: list[str], n: int, width: int) -> tuple[list[QA], list[str]]:
    """The first ``n`` questions whose answer occurs in some text together with >= 2 of the question's
    keywords, and a ``width``-character window of that text around the answer."""
    kept, windows = [], []
    for row in qa:
        for t in texts:
            at = t.find(row.answer)
            if at >= 0 and sum(w in t for w in _keywords(row.question)) >= 2:
                kept.append(row)
                windows.append(_window(t, at + len(row.answer) // 2, width))
                break
        if len(kept) == n:
            break
    return kept, windows


def reduce_real(d: MuseData, n: int, width: int, later: int | None = None) -> MuseData:
    """A CPU-sized slice of real MUSE data in which the target can memorise what is evaluated: forget = the
    first ``n`` VerbMem rows found in raw/forget and ``width``-character windows of raw/forget around the answers of the first ``n`` KnowMem forget
    questions found there (a VerbMem text: the prompt's last 3/5 of ``width`` characters + the gt's first 2/5);
    retain = windows of the retain text (raw retain, else privleak/retain2)
    around ``n`` KnowMem retain answers; each later sust request = windows of its first ``later`` (default
    ``n``) chunks, none when ``later`` is 0 (then there is one request: news only);
    PrivLeak: the forget texts against the first 2n holdout texts cut to ``width`` characters."""
    verb, verb_texts = [], []
    for row in d.verbmem:
        if any(row.gt[:100] in t for t in d.forget):
            verb.append(row)
            verb_texts.append(row.prompt[-(width * 3 // 5):] + row.gt[: width * 2 // 5])  # the cut in the middle
        if len(verb) == n:
            break
    kf, kf_texts = _answer_windows(d.knowmem_forget, d.forget, n, width)
    retain_src = d.retain or d.privleak_retain
    kr, kr_texts = _answer_windows(d.knowmem_retain, retain_src, n, width)
    forget = verb_texts + kf_texts
    later = n if later is None else later
    sust = [forget] + ([[_window(t, 0, width) for t in s[:later]] for s in d.sust[1:]] if later else [])
    return dataclasses.replace(
        d, source=d.source + f"; reduced slice ({n} rows, {width}-character windows)", forget=forget, retain=kr_texts,
        holdout=[], verbmem=verb, knowmem_forget=kf, knowmem_retain=kr, privleak_forget=forget,
        privleak_holdout=[t[:width] for t in d.privleak_holdout[: len(forget)]], privleak_retain=kr_texts,
        sust=sust, scal=[[t for s in sust[: k + 1] for t in s] for k in range(len(sust))])


# ---------------------------------------------------------------- evaluation

def verbmem_prompts(tok, rows: list[VerbRow], protocol: MuseProtocol) -> list[list[int]]:
    """VerbMem's prompts as token ids: each prompt with special tokens, cut to its last ``verbmem_prompt_tokens``."""
    prompts = []
    for r in rows:
        ids = tok(r.prompt, add_special_tokens=True)["input_ids"]
        prompts.append(ids if protocol.verbmem_prompt_tokens is None else ids[-protocol.verbmem_prompt_tokens:])
    return prompts


def verbmem_references(tok, rows: list[VerbRow], protocol: MuseProtocol) -> list[str]:
    """Each gt cut to ``verbmem_new_tokens`` tokens, decoded as the generations are."""
    return [clean_up_tokenization(tok.decode(tok(r.gt, add_special_tokens=True)["input_ids"][: protocol.verbmem_new_tokens],
                                             skip_special_tokens=True)) for r in rows]


def knowmem_prompts(tok, groups: list[tuple[list[QA], list[QA]]]) -> list[list[int]]:
    """The few-shot prompts of each group (its questions, their in-context examples), in order, as token ids."""
    return [tok(knowmem_prompt(r.question, [(s.question, s.answer) for s in icl]), add_special_tokens=True)["input_ids"]
            for qa, icl in groups for r in qa]


def muse_generations(model, tok, verb: list[VerbRow], groups: list[tuple[list[QA], list[QA]]], protocol: MuseProtocol,
                     progress=False) -> tuple[list[str], list[list[str]]]:
    """(VerbMem's greedy continuations, each KnowMem group's cut answers), decoded without special tokens and with
    the tokenization-space clean-up of the authors' transformers 4.x decoding. KnowMem rows stop once their cut
    answer is settled (``answer_settled``: the same answers as with all tokens generated); the forget and retain
    questions share batches, and so do the VerbMem prompts when both generate the same number of tokens (one
    pass of token-by-token decoding instead of two, which on a CPU costs the same per step for a batch of 2 or 8)."""
    verb_ids, know_ids = verbmem_prompts(tok, verb, protocol), knowmem_prompts(tok, groups)
    kwargs = dict(batch_size=protocol.generation_batch_size, progress=progress)
    with autocast(model, protocol.bf16):
        if protocol.verbmem_new_tokens == protocol.knowmem_new_tokens:
            gens = generate_ids(model, tok, verb_ids + know_ids, max_new_tokens=protocol.knowmem_new_tokens,
                                settled=[None] * len(verb_ids) + [answer_settled] * len(know_ids), **kwargs)
        else:
            gens = (generate_ids(model, tok, verb_ids, max_new_tokens=protocol.verbmem_new_tokens, **kwargs)
                    + generate_ids(model, tok, know_ids, max_new_tokens=protocol.knowmem_new_tokens,
                                   settled=answer_settled, **kwargs))
    gens = [clean_up_tokenization(g) for g in gens]
    answers = [cut_answer(g) for g in gens[len(verb_ids):]]
    out, at = [], 0
    for qa, _ in groups:
        out.append(answers[at: at + len(qa)])
        at += len(qa)
    return gens[: len(verb_ids)], out


def _text_scores(model, tok, texts: list[str], protocol: MuseProtocol, progress: bool) -> dict[str, np.ndarray]:
    return text_membership_scores(model, tok, texts, protocol.privleak_tokens, protocol.batch_size, protocol.mink_k,
                                  progress, desc="privleak")


def evaluate_muse(model, tok, d: MuseData, protocol: MuseProtocol = MuseProtocol(), progress: bool = False) -> dict:
    """VerbMem, KnowMem forget and retain (fractions; MUSE reports x100), the Min-K% AUC in MUSE's orientation
    (PrivLeak needs the gold's beside it) and every MIA's usual AUC, with per-row values."""
    verb = first_n(d.verbmem, protocol.verbmem_rows)
    groups = {"forget": (first_n(d.knowmem_forget, protocol.knowmem_rows), d.knowmem_forget_icl),
              "retain": (first_n(d.knowmem_retain, protocol.knowmem_rows), d.knowmem_retain_icl)}
    gens, answers = muse_generations(model, tok, verb, list(groups.values()), protocol, progress)
    gts = verbmem_references(tok, verb, protocol)
    verb_scores = rouge_l_f1(gens, gts)
    know = {name: (a, rouge_l_f1(a, [r.answer for r in qa])) for (name, (qa, _)), a in zip(groups.items(), answers)}
    n_priv = protocol.privleak_rows
    members = _text_scores(model, tok, first_n(d.privleak_forget, n_priv), protocol, progress)
    others = _text_scores(model, tok, first_n(d.privleak_holdout, n_priv), protocol, progress)
    aucs = {f"{k}_auc": mia.auc(members[k], others[k]) for k in members}
    return {"verbmem_f": float(verb_scores.mean()), "knowmem_f": float(know["forget"][1].mean()),
            "knowmem_r": float(know["retain"][1].mean()), "privleak_auc": muse_auc(aucs["min_k_auc"]), "mia": aucs,
            "per_question": {"verbmem": {"generation": gens, "gt": gts, "rougeL_f1": verb_scores.tolist()},
                             **{f"knowmem_{n}": {"answer": a, "rougeL_f1": s.tolist()} for n, (a, s) in know.items()},
                             "mia_forget": {k: v.tolist() for k, v in members.items()},
                             "mia_holdout": {k: v.tolist() for k, v in others.items()}}}


def forget_measure(ev: dict) -> float:
    """PROTOCOLS' m for MUSE: the mean of VerbMem and KnowMem on forget."""
    return (ev["verbmem_f"] + ev["knowmem_f"]) / 2


def _forget_of_means(means: dict) -> np.ndarray:
    """``forget_measure`` of rows of set means (the bootstrap's replicates)."""
    return (means["verbmem"][:, 0] + means["knowmem_forget"][:, 0]) / 2


@BENCHMARKS.register("muse")
class MuseBenchmark(Benchmark):
    """MUSE cells; see the module docstring. The target and the golds do not depend on the split (news, scal and
    sust share them): the ``split`` argument of the model and evaluation methods is accepted and ignored."""

    name = "muse"
    # MUSE's C1-C4 (ROUGE-L F1 as fractions; PrivLeak in percent, 0 ideal)
    native_metrics = ("verbmem_f", "knowmem_f", "knowmem_r", "privleak")
    snapshot_metrics = native_metrics + ("mia_min_k_plus_plus_auc",)

    @classmethod
    def metric_snapshot(cls, cell: dict) -> dict:
        """The six criteria's values and the summary, and scal/sust's earlier steps' criteria."""
        out = super().metric_snapshot(cell)
        for i, s in enumerate(cell["metrics"].get("steps", [])[:-1], start=1):
            out[f"step{i}"] = {k: round_sig(s["metrics"][k]) for k in cls.native_metrics}
        return dict(sorted(out.items()))
    splits = SPLITS
    dry_run_splits = ("news",)
    model_prefix = "muse-"
    models_per_split = False  # one target and one main gold for every split (a step's gold is built by its cell)
    cells_share_a_run = True  # a method's news, news-scal and news-sust cells share the first unlearning step

    def __init__(self, model: str = TINY_MODEL, *, target_eval: str | None = None, robustness: bool | None = None,
                 corpus: str = "news", **kwargs):
        self.corpus = corpus
        super().__init__(model, **kwargs)
        if robustness:  # the relearning attack is built on TOFU's QA rows; MUSE's is not wired yet
            self.notes.append("robustness checks are TOFU-only: MUSE cells carry none")
        self._data: MuseData | None = None
        # (method, settings, seed) -> (ev, run, model copy or None): unlearning the main forget set from the target,
        # which is the news cell and step 1 of news-scal and news-sust alike (see run_cell)
        self._first_steps: dict[tuple, tuple] = {}

    def make_profile(self, model, dry_run, max_steps, precision, protocol, compat) -> "MuseProfile":
        return muse_profile(model, dry_run, max_steps, precision, protocol)

    # -------------------------------------------------------------- data
    def data(self, split: str = "news") -> MuseData:
        if split not in self.splits:
            raise ValueError(f"unknown MUSE split {split!r}; valid: {', '.join(self.splits)}")
        if self._data is None:
            folder, tried = (find_muse_source(self.data_dir, self.corpus) if self.profile.use_real_data
                             else (None, []))
            if folder is None and (not self.profile.use_real_data or self.data_choice == "auto"):
                self._data = synthetic_muse(seed=self.seed, **self.profile.synthetic)
                if self.profile.use_real_data:  # auto: no folder, so the synthetic corpus stands in (never the hub)
                    self.notes.append(f"no MUSE-{self.corpus.capitalize()} folder found ({'; '.join(tried)}): the "
                                      "synthetic news corpus (fictitious) stands in; --data real reads the hub")
            else:
                if folder is not None:
                    d = load_muse_folder(folder, self.corpus)
                else:
                    try:
                        d = load_muse_hub(self.corpus)
                    except ConnectionError as err:
                        raise FileNotFoundError(
                            f"no MUSE-{self.corpus.capitalize()} data found; tried " + "; ".join(tried + [str(err)])
                            + f". Supply a folder laid out like muse/{self.corpus}/<subset>/<split>.json with --data-dir "
                            "(or UNLEARN_DATA_DIR), or use --data synthetic") from None
                if self.profile.real_rows is not None:
                    d = reduce_real(d, self.profile.real_rows, self.profile.real_window, self.profile.real_later_rows)
                else:
                    d = _complete_real(d)
                self._data = d
                if d.missing:
                    self.notes.append(f"MUSE files absent from {d.source}: {', '.join(d.missing)}")
        return self._data

    def data_sources(self) -> list[str]:
        return [self._data.source] if self._data is not None else []

    def identity(self, split: str | None = "news") -> dict:
        """Every split reads the same corpus, so ``None`` (the reference evaluations, shared by the splits) is news."""
        from unlearn.train import rows_hash

        d = self.data(split or "news")
        return {"source": d.source, "kind": "synthetic" if d.synthetic else "real", "corpus": d.corpus,
                "forget_texts": len(d.forget), "train_texts": sum(map(len, self.requests())) + len(d.retain),
                "hash": rows_hash(self.requests() + [d.retain]),
                "eval_hash": rows_hash([[(r.prompt, r.gt) for r in d.verbmem]] + [
                    [(r.question, r.answer) for r in rows] for rows in (d.knowmem_forget, d.knowmem_forget_icl,
                                                                        d.knowmem_retain, d.knowmem_retain_icl)]
                    + [d.privleak_forget, d.privleak_holdout])}

    def requests(self) -> list[list[str]]:
        """The forget texts of each request (sust), the first being the main forget set."""
        d = self.data()
        return (d.sust if d.sust else [d.forget])[: self.profile.max_requests]

    # -------------------------------------------------------------- models
    def target_dir(self, split: str | None = None) -> Path:
        return self._model_dir("target", [t for s in self.requests() for t in s] + self.data().retain)

    def gold_dir(self, split: str | None = None, k: int = 1) -> Path:
        """Retrain after the first ``k`` requests: retain + the requests after k."""
        return self._model_dir(f"gold{k}" if k > 1 else "gold", self.data().retain + [t for s in self.requests()[k:] for t in s])

    def evaluate(self, lm: LoadedModel, split: str | None = None) -> dict:
        return evaluate_muse(lm.model, lm.tokenizer, self.data(), self.profile.protocol, progress=self.progress)

    def reference_dir(self, kind: str, split: str | None) -> Path:
        """``target``, ``gold`` or ``goldK`` (retrained after the first K requests)."""
        return self.target_dir() if kind == "target" else self.gold_dir(k=int(kind[4:] or 1))

    def reference_ident(self, kind: str, split: str | None) -> str:
        return super().reference_ident(kind, None)  # one evaluation serves every split

    def reference_eval(self, kind: str, split: str | None = None) -> dict:
        return super().reference_eval(kind, None)

    # -------------------------------------------------------------- `unlearn eval`
    def eval_inputs(self, split: str = "news", *, max_rows: int | None = None, subjects: list[str] | None = None,
                    eval_protocol: MuseProtocol | None = None) -> tuple[MuseData, MuseProtocol]:
        """The corpus the benchmark reads (a MUSE folder; the synthetic news where the tier or ``--data`` says so,
        named in ``data``) under the profile's protocol; ``max_rows`` caps VerbMem, each KnowMem set and each
        PrivLeak side. Every split evaluates the same sets (the splits differ in what is unlearned)."""
        if subjects:
            raise ValueError("--subjects is WMDP's; MUSE evaluates its corpus (--split news)")
        d = self.data(split)
        proto = eval_protocol or self.profile.protocol
        if max_rows is not None:
            proto = dataclasses.replace(proto, verbmem_rows=max_rows, knowmem_rows=max_rows, privleak_rows=max_rows)
        return d, proto

    def score_model(self, lm: LoadedModel, inputs: tuple[MuseData, MuseProtocol]) -> dict:
        d, proto = inputs
        return evaluate_muse(lm.model, lm.tokenizer, d, proto, progress=self.progress)

    def eval_record(self, ev: dict, inputs: tuple[MuseData, MuseProtocol]) -> dict:
        d, proto = inputs
        # PrivLeak compares with a retrained model's AUC, which a lone checkpoint has not: the AUC is reported as is
        # (`judge`, with a gold's evaluation, gives PrivLeak)
        metrics = {"verbmem_f": ev["verbmem_f"], "knowmem_f": ev["knowmem_f"], "knowmem_r": ev["knowmem_r"],
                   "privleak_min_k_auc": ev["privleak_auc"], **{f"mia_{k}": v for k, v in ev["mia"].items()}}
        return {"protocol": proto.describe(),
                "protocol_name": proto.name, "compat": "muse", "precision": "bf16" if proto.bf16 else "fp32",
                "data": d.source, "notes": [n for n in self.notes if n], "metrics": metrics,
                "per_question": ev["per_question"], "logs": None}

    # -------------------------------------------------------------- one cell
    def context(self, split: str, lm: LoadedModel, schedule: dict | None = None, forget: list[str] | None = None) -> UnlearnContext:
        """``forget``: the texts of the request being unlearned (default: the first request, the main forget set)."""
        forget = self.requests()[0] if forget is None else forget
        tok, n = lm.tokenizer, self.profile.text_length
        return self.unlearn_context(split, lm, schedule, forget=[encode_text(tok, t, n) for t in forget],
                                    retain=[encode_text(tok, t, n) for t in self.data().retain],
                                    forget_questions=headlines(forget), idk_answers=load_idk(None))

    def dynamics_probe(self, split: str, lm: LoadedModel, counter=None) -> Probe | None:
        """forget_prob / retain_prob: mean per-token probability exp(-NLL/n) of the first forget and retain texts."""
        n_forget, n_retain = self.profile.dynamics_rows
        if not n_forget or not n_retain:
            return None
        d, tok, n = self.data(), lm.tokenizer, self.profile.text_length
        forget = [encode_text(tok, t, n) for t in d.forget[:n_forget]]
        retain = [encode_text(tok, t, n) for t in d.retain[:n_retain]]

        def measure(model):
            if counter is not None:
                counter.paused = True
            try:
                f = score_examples(model, forget, tok.pad_token_id, share_prompts=False, batch_size=self.profile.protocol.batch_size)
                r = score_examples(model, retain, tok.pad_token_id, share_prompts=False, batch_size=self.profile.protocol.batch_size)
            finally:
                if counter is not None:
                    counter.paused = False
            return {"forget_prob": float(np.exp(-f.mean_nll).mean()), "retain_prob": float(np.exp(-r.mean_nll).mean())}

        return Probe(measure)

    def gold_kind(self, k: int) -> str:
        """The reference of step k: gold_k, or gold_1 when the profile builds no per-step golds."""
        return "gold" if k == 1 or not self.profile.step_golds else f"gold{k}"

    def _step_metrics(self, ev: dict, k: int) -> dict:
        return self.judge(None, ev, self.reference_eval("target"), self.reference_eval(self.gold_kind(k)))

    def judge(self, split: str | None, ev: dict, target: dict, gold: dict) -> dict:
        """Forget efficacy from the mean of VerbMem's and KnowMem-forget's ROUGE, retain performance from
        KnowMem-retain's, the Min-K%++ AUC against the gold's; PrivLeak against the gold's AUC. Every MUSE split
        evaluates the same sets, so ``split`` changes nothing."""
        summary = summary_columns(forget_measure(target), forget_measure(gold), forget_measure(ev), target["knowmem_r"],
                                  ev["knowmem_r"], ev["mia"]["min_k_plus_plus_auc"])
        metrics = {"verbmem_f": ev["verbmem_f"], "knowmem_f": ev["knowmem_f"], "knowmem_r": ev["knowmem_r"],
                   "privleak": privleak(ev["privleak_auc"], gold["privleak_auc"]), "privleak_auc": ev["privleak_auc"],
                   "forget_measure": forget_measure(ev), **{f"mia_{k}": v for k, v in ev["mia"].items()},
                   **mia_versus_gold(summary["mia_auc"], gold["mia"]["min_k_plus_plus_auc"])}
        return {"summary": summary, "metrics": metrics, "intervals": self.summary_intervals(target, gold, ev, summary)}

    def interval_measures(self, target: dict, gold: dict | None, ev: dict):
        """Forget: the mean of VerbMem's and KnowMem-forget's ROUGE-L F1 means (each set resampled on its own);
        utility: KnowMem-retain ROUGE-L F1; MIA: Min-K%++ on the PrivLeak texts."""
        def sets(e, names):
            return as_sets({n: e["per_question"][n]["rougeL_f1"] for n in names})

        forget = Measure(_forget_of_means, **{role: sets(e, ("verbmem", "knowmem_forget"))
                                              for role, e in (("target", target), ("gold", gold), ("model", ev))})
        utility = Measure(mean_of_first, target=sets(target, ("knowmem_retain",)), model=sets(ev, ("knowmem_retain",)))
        pq = ev["per_question"]
        return forget, utility, pq["mia_forget"]["min_k_plus_plus"], pq["mia_holdout"]["min_k_plus_plus"]

    def run_cell(self, method: str, split: str, overrides: dict | None = None) -> dict:
        cfg, sched = method_settings(method, self.profile.method_overrides, overrides)
        start = time.time()
        d, kind = self.data(split), SPLIT_KINDS[split]
        notes = list(self.notes)
        if kind.sequence and not self.profile.step_golds:
            notes.append("news-scal/news-sust: gold_1 (retrained without request 1) is the reference and the retrain "
                         "row at every step; no per-step retrains in this profile")
        steps, runs, per_question = [], [], None
        n_steps = len(self.requests()) if kind.sequence else 1
        if kind.sequence and n_steps < 2:
            raise ValueError(f"MUSE {split} needs several forget requests, and {d.source} has one (the dry run's "
                             "reduced slice covers news only; use --protocol reduced without --dry_run, or full)")
        # scal's growing forget sets, as many as the requests trained (max_requests keeps the first ones)
        scal = d.scal[: self.profile.max_requests]
        if kind.growing and scal and len(scal) != n_steps:
            raise ValueError(f"MUSE scal has {len(scal)} forget sets but sust {n_steps} requests in {d.source}")
        if kind.continues and method != "retrain" and self.quant is not None:  # before any step is paid for
            raise NotImplementedError(QUANTISED_SUST)
        target = self.reference_eval("target")
        lm = None
        for k in range(1, n_steps + 1):
            if method == "retrain":
                ev = self.reference_eval(self.gold_kind(k))
                run = {"cost": None, "dynamics": None, "method_stats": None}
                size = None
            else:
                forget = (scal[k - 1] if kind.growing else self.requests()[k - 1]) if kind.sequence else d.forget
                first = k == 1 and list(forget) == list(d.forget)
                key = (method, repr(cfg), repr(sorted((sched or {}).items())), self.seed)
                shared = self._first_steps.get(key) if first else None
                need_model = kind.continues or self.model_sink is not None
                if shared is not None and (shared[2] is not None or not need_model):
                    ev, run, kept = shared
                    lm = copy.deepcopy(kept) if need_model else None
                    notes.append("the first step (unlearning the main forget set from the target) is shared by news, "
                                 "news-scal and news-sust: one run, evaluated once")
                else:
                    if kind.continues and lm is not None:  # the next request continues from the last model
                        lm = self._reload(lm)
                    else:
                        lm = self.load(self.target_dir())
                    ctx = self.context(split, lm, sched, forget)
                    # every first step (news is one) runs the probe, so a shared first step carries the news cell's curve
                    probe = (lambda m, counter: self.dynamics_probe(split, m, counter)) if first else None
                    lm, run = run_method(method, cfg, ctx, probe, self.seed)
                    ev = self.evaluate(lm)
                    if first:
                        keep = self.device == "cpu" and sum(p.numel() for p in lm.model.parameters()) <= self.KEEP_MODELS_UP_TO
                        self._first_steps[key] = (ev, run, copy.deepcopy(lm) if keep else None)
                size = len(forget)
            step = {kind.step_key: k, "forget_texts": size, **self._step_metrics(ev, k),
                    "cost": run["cost"]}
            steps.append(step)
            runs.append(run)
            per_question = ev["per_question"]
        if lm is not None and self.model_sink is not None:  # `unlearn export`: the last step's model
            self.model_sink(lm)
        last = steps[-1]
        metrics = dict(last["metrics"])
        if kind.sequence:
            metrics["steps"] = [{"summary": s["summary"], "metrics": s["metrics"], "forget_texts": s["forget_texts"],
                                 "cost": s["cost"]} for s in steps]
        cost = None if method == "retrain" else {
            "unlearn_s": round(sum(r["cost"]["unlearn_s"] for r in runs), 2), "tokens": sum(r["cost"]["tokens"] for r in runs)}
        run = {"method_stats": runs[-1]["method_stats"], "cost": cost,
               "dynamics": None if kind.sequence else runs[0]["dynamics"]}
        judged = {"summary": last["summary"], "intervals": last["intervals"], "metrics": metrics}
        return self.cell_record(method, split, cfg, sched, judged, ev={"per_question": per_question}, target=target,
                                gold=self.reference_eval("gold"), run=run, robust=None, start=start, notes=notes)

    def references(self, target: dict, gold: dict | None) -> dict:
        keys = ("verbmem_f", "knowmem_f", "knowmem_r")
        return {"target": {"forget_measure": forget_measure(target), **{k: target[k] for k in keys},
                           "privleak": privleak(target["privleak_auc"], gold["privleak_auc"])},
                "gold": {"forget_measure": forget_measure(gold), **{k: gold[k] for k in keys}}}

    # first-step models are kept in memory (a copy per method and setting) up to this many parameters (tiny tier:
    # 2M, 8 MB each); above it news-sust re-runs its first step, and only news and news-scal share one
    KEEP_MODELS_UP_TO = 50_000_000

    def _reload(self, lm: LoadedModel) -> LoadedModel:
        """The unlearned model as the start of the next request: its weights (adapters merged; IWAP's pruned
        atoms zeroed in them) with fresh adapters on top, as a new target would be loaded."""
        from unlearn.models import add_lora, is_quantised

        if is_quantised(lm.model):
            raise NotImplementedError(QUANTISED_SUST)
        model = fold_into_weights(lm)
        for p in model.parameters():
            p.requires_grad_(self.profile.lora is None)
        if self.profile.lora is not None:
            model = add_lora(model, self.profile.lora)
        lm.model = model
        return lm


def _complete_real(d: MuseData) -> MuseData:
    """The full protocol on a folder or the hub: raw retain stands in from privleak/retain2 when absent, and
    scal from the cumulative unions of the sust requests when its files are absent."""
    out = d
    if not d.retain:
        out = dataclasses.replace(out, retain=d.privleak_retain)
    if not d.scal and d.sust:
        out = dataclasses.replace(out, scal=[[t for s in d.sust[: k + 1] for t in s] for k in range(len(d.sust))])
    return out

