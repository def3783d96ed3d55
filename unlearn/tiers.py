"""The tiers, each declared once with every benchmark's recipe in it, as data.

- **tiny**: ``tiny-qwen3``, a ~2M-parameter Qwen3-shaped model trained from scratch on each benchmark's
  synthetic data, in float32 under the numerics pins: the tier of ``pytest evals`` and the snapshots.
- **reduced**: a real model (``smollm2-135m`` for the dry run) on CPU-sized slices of the real data.
- **full**: the published protocols on any real model (the research target: Qwen3-4B with QLoRA).

A ``Recipe`` holds one benchmark's numbers in one tier: the ``TrainConfig`` fields of target/gold training and
of the shared unlearning schedule, its evaluation protocol's fields, its profile's other fields, the relearning
attack's and a note. Each benchmark turns a recipe into its profile (``make_profile``: ``profile_for``,
``muse_profile``, ``wmdp_profile``, ``unsafe_profile``), adding only what depends on the run (precision,
compatibility conventions, ``--max_steps``). A tier's method settings are its ``settings`` under the choices of
its tuned file, ``unlearn/data/tuned/<tuned>.json`` (chosen settings only; the trials behind them are in
``perf/tuning/``). This module imports nothing of the package, so every module can read it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

TINY_MODEL = "tiny-qwen3"
DRY_RUN_MODEL = "smollm2-135m"

# Method settings of every full-scale profile (real models, published protocols): IWAP's influence pass keeps the
# whole forward graph for its gradient, so it runs one row at a time: the largest that fits a 10 GiB cap on
# Qwen3-4B's shape (the measurement: docs/guide.md, GPU tier)
FULL_SCALE_SETTINGS = {"iwap": {"rows_per_pass": "1"}}


@dataclass(frozen=True)
class Recipe:
    """One benchmark's recipe in one tier. ``note`` is formatted with ``precision`` and ``protocol``."""

    target: dict  # TrainConfig fields of the target's and the gold's training
    unlearn: dict  # TrainConfig fields of the shared unlearning schedule
    protocol: dict = field(default_factory=dict)  # the benchmark's evaluation-protocol fields
    profile: dict = field(default_factory=dict)  # the benchmark profile's other fields
    robustness: dict | None = None  # RobustnessConfig fields of the relearning attack per cell (None: off)
    note: str = ""


@dataclass(frozen=True)
class Tier:
    """A tier: how its models train (LoRA or full fine-tuning, precision rule), its method settings, and every
    benchmark's recipe."""

    name: str
    lora: tuple[int, int] | None  # (rank, alpha) of the LoRA every training uses; None: full fine-tuning
    follows_precision: bool  # training and evaluation follow --precision; False: float32 (pinned numerics)
    settings: dict  # method settings of the tier, under those of its tuned file
    tuned: str | None  # the tuned-settings file's name, "{model}" filled in (None: untuned)
    recipes: dict  # benchmark name -> Recipe ("<name>@dry_run": the dry run's variant, where it differs)
    # a method's cell time relative to a plain one's (1.0 where absent): how ``unlearn bench --workers N`` orders
    # its cells so that the workers finish together (unlearn/executors.py); only the order depends on it
    cell_costs: dict = field(default_factory=dict)

    def cell_cost(self, method: str) -> float:
        if method == "retrain":  # the gold's row: no unlearning, and the gold's reference evaluation is shared
            return 0.0
        return float(self.cell_costs.get(method, 1.0))

    def recipe(self, benchmark: str, dry_run: bool = False) -> Recipe:
        if dry_run and f"{benchmark}@dry_run" in self.recipes:
            return self.recipes[f"{benchmark}@dry_run"]
        if benchmark not in self.recipes:
            raise KeyError(f"the {self.name} tier has no recipe for {benchmark!r}; it has: "
                           f"{', '.join(k for k in self.recipes if '@' not in k)}")
        return self.recipes[benchmark]


_TARGET = dict(warmup_steps=10, weight_decay=0.01)  # every from-scratch and full-protocol target

TINY = Tier(
    name="tiny", lora=None, follows_precision=False,
    # every method's settings are what `unlearn tune` chose on TOFU's tune split (the other benchmarks take
    # them unchanged); rmu's alpha 100 comes from its earlier grid (alpha {100, 1200}). The control (finetune)
    # steps at the largest lr at which a tuned method takes plain AdamW steps on every weight (9e-4 = "3x" the
    # recipes' unlearning lr 3e-4: grad_ascent, grad_diff, npo, simnpo, idk; trou's 3e-3 steps are shrunk or
    # rejected by its trust region on the retain NLL) for the largest step budget of the methods (5 epochs over the
    # forget split, a retain batch beside each forget batch: grad_diff, npo, simnpo, trou, dsu's two phases), spent
    # on retain batches; tests/test_layout.py checks both. A control slower or shorter than the methods would "not
    # forget" by stepping less, a longer one would forget by interference alone (docs/methods.md)
    settings={"rmu": {"alpha": "100"}, "finetune": {"lr": "3x", "matched_epochs": "5"}}, tuned=TINY_MODEL,
    recipes={
        "tofu": Recipe(target=dict(lr=3e-3, epochs=20, batch_size=16, **_TARGET),
                       unlearn=dict(lr=3e-4, epochs=5, batch_size=8), protocol=dict(max_new_tokens=64),
                       profile=dict(synthetic_authors=40, use_real_data=False),
                       robustness=dict(lr=1e-3, steps=10),
                       note="tiny-qwen3 trained from scratch on synthetic authors (full fine-tuning)"),
        "muse": Recipe(target=dict(lr=3e-3, epochs=50, batch_size=4, **_TARGET),
                       unlearn=dict(lr=3e-4, epochs=5, batch_size=8),
                       protocol=dict(name="tiny", batch_size=16, generation_batch_size=32),
                       # 2 of the corpus's 4 requests trained and unlearned: news-scal's sizes 1 and 2 requests,
                       # news-sust's requests 1 and 2 (the fewest that make a sequence; steps 3 and 4 cost more than
                       # news, news-scal and news-sust's first steps together and decided no row on this tier)
                       profile=dict(use_real_data=False, step_golds=False, max_requests=2),
                       note="tiny-qwen3 trained from scratch on synthetic news (fictitious; full fine-tuning; 2 "
                            "forget requests)"),
        "wmdp": Recipe(target=dict(lr=3e-3, epochs=40, batch_size=8, **_TARGET),
                       unlearn=dict(lr=3e-4, epochs=5, batch_size=8),
                       protocol=dict(name="synthetic", mmlu_per_subject=None, batch_size=32),
                       profile=dict(text_length=256),
                       note="tiny-qwen3 trained from scratch on the synthetic hazardous domain (fictitious; full "
                            "fine-tuning)"),
        "unsafe": Recipe(target=dict(lr=3e-3, epochs=60, batch_size=16, **_TARGET),
                         unlearn=dict(lr=3e-4, epochs=5, batch_size=8),
                         protocol=dict(name="synthetic", max_new_tokens=64), profile=dict(use_real_data=False),
                         robustness=dict(lr=1e-3, steps=10, min_rows=4, fraction=0.25),
                         note="tiny-qwen3 trained from scratch on synthetic unsafe requests (fictitious; full "
                              "fine-tuning)"),
    })

_REDUCED_TARGET = dict(lr=2e-3, batch_size=4, warmup_steps=2, weight_decay=0.01)
_REDUCED_UNLEARN = dict(lr=1e-3, epochs=1)

# Sized for a CPU (walls per CPU kind: docs/guide.md): the fewest target epochs after which the target still
# visibly knows the forget authors (its forget ROUGE-L against the base model's: docs/lab/measurements.md)
_REDUCED_TOFU = Recipe(target=dict(epochs=4, **_REDUCED_TARGET), unlearn=dict(batch_size=8, **_REDUCED_UNLEARN),
                       profile=dict(real_slice_retain=10, synthetic_authors=20, target_eval="reference",
                                    dynamics_rows=(40, 10)),
                       note="reduced CPU protocol: trained on the forget authors + 10 retain QA; evaluated on 40 "
                            "forget, 10 retain, 10 real-author, 10 world-fact rows, greedy <= 48 tokens; 1 "
                            "unlearning epoch; dsu.forget_epochs=1")

REDUCED = Tier(
    name="reduced", lora=(16, 32), follows_precision=True,
    # the dry run's settings: `unlearn tune --dry_run --grid perf/grids/dry_run.json` (TOFU's tune split, an
    # author no evaluated forget set holds); one unlearning epoch, so DSU's forget phase is one epoch too
    settings={"dsu": {"forget_epochs": "1"}}, tuned="{model}-reduced",
    # the dry run's cells against finetune's (wall per cell, docs/lab/measurements.md)
    cell_costs={"iwap": 1.4, "trou": 1.3},
    recipes={
        "tofu": _REDUCED_TOFU,
        # The dry run's: the same models and schedule; the forget split's answers are scored without their
        # paraphrased and perturbed answers (no forget truth ratio, hence no Forget Quality: about half of what
        # each evaluation scores), and the forgetting curve's probe scores the first 10 forget and 10 retain rows
        # (docs/guide.md, "The dry run in detail", gives the measurement)
        "tofu@dry_run": replace(
            _REDUCED_TOFU, protocol=dict(forget_truth_ratio=False),
            profile={**_REDUCED_TOFU.profile, "dynamics_rows": (10, 10)},
            note=_REDUCED_TOFU.note + "; no forget truth ratio / Forget Quality; dynamics on 10 + 10 rows"),
        # CPU-sized: 4 VerbMem + 4 KnowMem windows of raw/forget and 4 retain windows, 4 windows per later request
        # for scal/sust (evals --model M; the dry run takes the smaller slice below). 10 target epochs: fewer left
        # the target's VerbMem at the gold's, so nothing was memorised to unlearn (docs/lab/measurements.md).
        "muse": Recipe(target=dict(epochs=10, **_REDUCED_TARGET), unlearn=dict(batch_size=4, **_REDUCED_UNLEARN),
                       protocol=dict(name="reduced", verbmem_new_tokens=64, verbmem_prompt_tokens=128,
                                     privleak_tokens=256, batch_size=4, generation_batch_size=8),
                       profile=dict(text_length=256, real_window=1000, real_rows=4, real_later_rows=4,
                                    step_golds=False,
                                    # without a MUSE folder: a small synthetic corpus (4 articles per request, 9
                                    # retain)
                                    synthetic=dict(per_request=4, n_retain=9, n_holdout=4, n_eval_retain=4)),
                       note="reduced MUSE-News protocol: 1,000-character windows of raw/forget around 4 VerbMem "
                            "excerpts and 4 KnowMem answers, retain = windows of privleak/retain2 around 4 KnowMem "
                            "retain answers, 4 windows per later request; VerbMem: last 128 prompt tokens, 64 new; "
                            "PrivLeak on the first 256 tokens; 1 unlearning epoch"),
        # The dry run's opt-in MUSE part (--benchmarks tofu,muse; news only; its wall: docs/guide.md): 2 VerbMem
        # and 2 KnowMem windows of 400 characters as the forget set, 2 retain windows, 96-token texts; one target
        # and one gold training of 8 texts' worth. Target: 8 epochs at batch 4, the schedule among those tried at
        # which the target memorises the VerbMem windows (docs/guide.md, "The dry run in detail"); KnowMem forget
        # stays 0 (a 135M model does not learn to answer the questions from the windows' raw text).
        "muse@dry_run": Recipe(
            target=dict(lr=3e-3, epochs=8, batch_size=4, warmup_steps=1, weight_decay=0.01),
            unlearn=dict(batch_size=4, **_REDUCED_UNLEARN),
            protocol=dict(name="reduced", verbmem_new_tokens=32, verbmem_prompt_tokens=48, privleak_tokens=96,
                          batch_size=8, generation_batch_size=8),
            profile=dict(text_length=96, real_window=400, real_rows=2, real_later_rows=0, step_golds=False,
                         # without a MUSE folder: a small synthetic corpus (2 articles to forget, 2 retain + their
                         # quizzes; the 5 articles behind the in-context examples are not trained on)
                         synthetic=dict(per_request=2, n_retain=7, n_holdout=2, n_eval_retain=2, icl_trained=False),
                         max_requests=1, dynamics_rows=(0, 0)),  # no forgetting curve: TOFU's cells draw one
            note="reduced MUSE-News protocol, the dry run's slice: 400-character windows of raw/forget around 2 "
                 "VerbMem excerpts and 2 KnowMem answers, retain = windows of privleak/retain2 around 2 KnowMem "
                 "retain answers; news only; VerbMem: last 48 prompt tokens, 32 new; PrivLeak on the first 96 "
                 "tokens; 1 unlearning epoch"),
        # CPU-sized memorised protocol (the dry run's and evals --model M's; the two share a cached target only
        # under the same kernels: pytest pins every model's numerics, the CLI only the tiny tier's): 8 A questions
        # per subject, 8 of A and B scored, 8 WikiText paragraphs
        "wmdp": Recipe(target=dict(epochs=8, **_REDUCED_TARGET), unlearn=dict(lr=1e-3, epochs=2, batch_size=4),
                       protocol=dict(name="memorised-reduced", hazard_rows=8, mmlu_per_subject=2, retain_nll_texts=8,
                                     batch_size=8),
                       profile=dict(text_length=384, real_rows=8, retain_texts=8, retain_chars=1000,
                                    synthetic=dict(n_agents=8, n_general=8)),
                       note="memorised WMDP protocol, CPU-sized: 8 A questions per subject trained, 8 of A and B "
                            "scored; MMLU: first 2 test questions of each subject (114); retain: 8 WikiText-2 "
                            "paragraphs (1,000 characters)"),
        "unsafe": Recipe(target=dict(epochs=3, **_REDUCED_TARGET), unlearn=dict(batch_size=4, **_REDUCED_UNLEARN),
                         protocol=dict(name="reduced", forget_rows=16, retain_rows=16, lookalike_rows=16, samples=1,
                                       batch_size=8, generation_batch_size=16),
                         profile=dict(synthetic=dict(n_benign=24, n_eval_benign=16, n_refusal=16),
                                      real=dict(n_forget=16, n_holdout=16, n_retain=48, n_eval_retain=16)),
                         note="reduced forget-to-be-unsafe protocol: 16 forget, 16 held-out, 48 retain requests, 16 "
                              "of each evaluated, 1 sample per wording"),
    })

_FULL_TEXT_TARGET = dict(lr=1e-5, batch_size=4, grad_accum=8, **_TARGET)  # MUSE, WMDP, unsafe: effective batch 32

FULL = Tier(
    name="full", lora=(16, 32), follows_precision=True, settings=FULL_SCALE_SETTINGS, tuned=None,
    recipes={
        # greedy generation 64 prompts a batch under TOFU's conventions (a row's greedy tokens do not depend on
        # its batch; 64 is the largest batch that fits 10 GiB of GPU memory with a Qwen3-4B-shaped 4-bit + LoRA
        # model at 200 new tokens: docs/guide.md, "Warm throughput"); open-unlearning's conventions too (their scoring
        # keeps its batches of 32)
        "tofu": Recipe(target=dict(lr=1e-4, epochs=5, batch_size=16, warmup_steps=50, weight_decay=0.01),
                       unlearn=dict(lr=1e-5, epochs=5, batch_size=16, grad_accum=2),
                       protocol=dict(generation_batch_size=64), profile=dict(target_eval="reference"),
                       robustness=dict(lr=1e-5, steps=10, batch_size=4),  # the published relearning lr
                       note="full TOFU protocol ({precision}; scores in fp32)"),
        "muse": Recipe(target=dict(epochs=5, **_FULL_TEXT_TARGET),
                       unlearn=dict(lr=1e-5, epochs=10, batch_size=4, grad_accum=8), profile=dict(text_length=2048),
                       note="full MUSE protocol ({precision}; scores in fp32)"),
        "wmdp": Recipe(target=dict(epochs=3, **_FULL_TEXT_TARGET), unlearn=dict(lr=5e-5, epochs=1, batch_size=4),
                       protocol=dict(name="memorised", mmlu_per_subject=None), profile=dict(text_length=512),
                       note="{protocol} WMDP protocol ({precision}; scores in fp32)"),
        "unsafe": Recipe(target=dict(epochs=3, **_FULL_TEXT_TARGET),
                         unlearn=dict(lr=1e-5, epochs=5, batch_size=4, grad_accum=8),
                         protocol=dict(name="full", max_new_tokens=128), robustness=dict(lr=1e-5),
                         note="full forget-to-be-unsafe protocol ({precision}; scores in fp32)"),
    })

TIERS = {t.name: t for t in (TINY, REDUCED, FULL)}


def is_tiny(model: str | None) -> bool:
    """The tiny tier: trained from scratch on synthetic data, float32 unless bf16 is asked for, pinned numerics."""
    return model == TINY_MODEL


def default_model(dry_run: bool) -> str:
    """The model a command runs when none is named: the dry run's real model, else the tiny tier's."""
    return DRY_RUN_MODEL if dry_run else TINY_MODEL


def run_tier(model: str, dry_run: bool, protocol: str | None) -> Tier:
    """The tier a run of ``model`` is in (``protocol`` None: ``reduced`` for the dry run, else ``full``)."""
    return TIERS[tier_of(model, protocol or ("reduced" if dry_run else "full"))]


def tier_of(model: str, protocol: str | None) -> str:
    """``tiny``, ``reduced`` or ``full`` for ``model`` under ``protocol`` (None: full; any protocol but
    ``reduced``, such as WMDP's ``standard``, runs the full tier's recipes)."""
    return "tiny" if is_tiny(model) else ("reduced" if protocol == "reduced" else "full")
