"""TOFU's evaluation protocol: how much of each split is scored and under which conventions (TOFU's own or
open-unlearning's), with the named presets, and the reference text a generation's ROUGE is measured against."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from unlearn.benchmarks.tofu.data import EVAL_ROWS, TofuRow
from unlearn.metrics import mia
from unlearn.scoring import clean_up_tokenization, encode_qa
from unlearn.tiers import FULL


COMPATS = ("tofu", "open-unlearning")
# greedy-generation batch of the full tier's TOFU recipe (sized for a 10 GiB GPU: unlearn/tiers.py)
GENERATION_BATCH = FULL.recipes["tofu"].protocol["generation_batch_size"]
# greedy-generation batch of the full protocol on a CPU, where memory does not bound it: decoding there is
# compute-bound, and SmolLM2-135M in float32 on 2 cores decodes ~1.17x as many rows a second at 128 as at 64,
# fewer at 256 (docs/lab/measurements.md)
CPU_GENERATION_BATCH = 128
PROTOCOL_NAMES = ("full", "reduced")


@dataclass(frozen=True)
class EvalProtocol:
    """How much of each split is scored, and under which conventions; the defaults are the published
    protocol (TOFU's definitions, first 300 rows, greedy <= 200 tokens, scores in float32)."""

    max_rows: int | None = EVAL_ROWS  # first rows of each evaluation split (None: every row)
    retain_rows: int | None = None  # cap on retain rows (None: max_rows)
    utility_rows: int | None = None  # cap on real-authors and world-facts rows (None: max_rows)
    max_new_tokens: int = 200
    batch_size: int = 16  # scored answers per batch
    generation_batch_size: int | None = None  # prompts per greedy-generation batch (None: batch_size)
    mink_k: float = mia.DEFAULT_K
    bf16: bool = False  # bf16 autocast for greedy generation
    score_bf16: bool = False  # bf16 autocast for scoring too (reduced protocol only: it moves Prob and R by ~1e-2)
    compat: str = "tofu"  # "tofu": TOFU's definitions; "open-unlearning": that tool's (scoring.encode_qa)
    # score the forget split's paraphrased and perturbed answers (its truth ratio, hence Forget Quality); off,
    # only its answers are scored (the dry run: about half of the texts an evaluation scores)
    forget_truth_ratio: bool = True
    name: str = "full"  # "full" (published), "reduced" (CPU dry run) or "custom"

    def describe(self) -> str:
        rows = lambda n: "all" if n is None else str(n)  # noqa: E731
        prec = ("bf16 autocast" if self.score_bf16 else "fp32 scores, bf16 generation") if self.bf16 else "fp32"
        return (f"{self.name} protocol ({self.compat} conventions, {prec}): {rows(self.max_rows)} forget rows, "
                f"{rows(self.retain_rows or self.max_rows)} retain rows, {rows(self.utility_rows or self.max_rows)} "
                f"real-author/world-fact rows, greedy <= {self.max_new_tokens} new tokens"
                + ("" if self.forget_truth_ratio else "; forget truth ratio and forget quality not measured"))

    @property
    def open_unlearning(self) -> bool:
        return self.compat == "open-unlearning"


def protocol_preset(name: str = "full", compat: str = "tofu", bf16: bool = False) -> EvalProtocol:
    """``full``: the published protocol (300 rows, 200 tokens; bf16 only for generation, scores in float32,
    within 1e-3 of fp32 on Prob and truth ratio). ``reduced``: the CPU dry run (40 forget, 10 retain,
    10 real-author, 10 world-fact rows, 48 tokens; bf16 autocast everywhere where native, deviation in
    docs/guide.md). ``compat="open-unlearning"`` takes that tool's conventions and, under ``full``, its rows (all
    of every split: 400 retain, 100 real-author, 117 world-fact), its scoring batches of 32 (their padding sets
    each score's rounding) and Min-K k = 0.4; its greedy generations run in the full tier's batches of 64, in
    data order: a row's greedy tokens do not depend on its batch (every text equal to that tool's in the whole
    conformance run), and on a 2-core CPU a batch of 64 decodes ~1.2x as many rows a second as one of 32
    (``sized_for`` takes a CPU's batch of 128)."""
    if compat not in COMPATS:
        raise ValueError(f"unknown compatibility mode {compat!r}; valid: {', '.join(COMPATS)}")
    if name == "full":
        p = EvalProtocol(bf16=bf16)
    elif name == "reduced":
        p = EvalProtocol(max_rows=40, retain_rows=10, utility_rows=10, max_new_tokens=48, batch_size=20,
                         generation_batch_size=80, bf16=bf16, score_bf16=bf16, name="reduced")
    else:
        raise ValueError(f"unknown protocol {name!r}; valid: {', '.join(PROTOCOL_NAMES)}")
    if compat == "open-unlearning":
        rows = {"max_rows": None} if name == "full" else {}
        p = dataclasses.replace(p, compat=compat, batch_size=32, generation_batch_size=GENERATION_BATCH, **rows)
    return p


def sized_for(protocol: EvalProtocol, device: str | None) -> EvalProtocol:
    """``protocol`` with its greedy generations in batches of :data:`CPU_GENERATION_BATCH` when it is the full
    protocol and ``device`` is a CPU (None: unchanged). A row's greedy tokens do not depend on its batch (the
    whole open-unlearning conformance run holds every text equal at this batch), so only the pace changes."""
    if protocol.name != "full" or device is None or not str(device).startswith("cpu"):
        return protocol
    current = protocol.generation_batch_size or protocol.batch_size
    return dataclasses.replace(protocol, generation_batch_size=max(current, CPU_GENERATION_BATCH))


def rouge_reference(tok, row: TofuRow, protocol: EvalProtocol) -> str:
    """The text a generation is compared with: the answer (TOFU), or open-unlearning's: the templated
    conversation decoded without special tokens and with tokenization-space clean-up, minus the decoded
    prompt, stripped."""
    if not protocol.open_unlearning:
        return row.answer
    e = encode_qa(tok, row.question, row.answer, style=protocol.compat)
    decode = lambda ids: clean_up_tokenization(tok.decode(list(ids), skip_special_tokens=True))  # noqa: E731
    return decode(e.prompt_ids + e.answer_ids).replace(decode(e.prompt_ids), "").strip()
