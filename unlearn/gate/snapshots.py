"""Snapshots of the tiny tier's metrics, compared within the spread the tier itself shows.

The tiny tier trains its models from scratch for about a thousand steps, and that training is chaotic: initial
weights moved by a few ulps (what another CPU's rounding does) end in a measurably different model, in float32 and
in float64 alike (docs/lab/measurements.md, "Verdicts that survive another CPU"). So a snapshot cannot pin the 4th significant figure of a metric across CPUs.
Each benchmark's metrics are instead compared within a tolerance measured on the tier: twice the widest difference
between two seeds of the same cell (three draws understate the spread: a nudged run exceeded it once)
(``unlearn/gate/tolerances.json``, written by ``perf/tier_seeds.py`` from three seeds of every cell; a floor of 0.001
for the rounding). A structural change (a key added or gone, a value that became None) and a move beyond the tier's
own spread still show as a snapshot diff, except where the seeds themselves showed a value defined on some seeds
and undefined (None) on others (``"sometimes_undefined"``: the control's relearning recovery, undefined when it
forgot exactly nothing); ``evals/test_perturbation.py`` checks that a run from nudged weights stays within these
tolerances.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from syrupy.extensions.amber import AmberSnapshotExtension

TOLERANCES = Path(__file__).resolve().with_name("tolerances.json")
FLOOR = 1e-3  # 4 significant figures of a value near 1, the snapshots' rounding
_LINE = re.compile(r"^\s*'([^']+)': (.*?),?$")


@lru_cache(maxsize=1)
def _tier_file() -> dict:
    """``unlearn/gate/tolerances.json`` as written by perf/tier_seeds.py (empty when absent)."""
    return json.loads(TOLERANCES.read_text()) if TOLERANCES.is_file() else {}


def tolerances() -> dict:
    """{benchmark: {metric: tolerance}} (missing: the floor)."""
    return _tier_file().get("tolerances", {})


def tolerance(benchmark: str, metric: str) -> float:
    return max(FLOOR, tolerances().get(benchmark, {}).get(metric, FLOOR))


def sometimes_undefined() -> frozenset[str]:
    """``benchmark|method|split|metric`` keys that the seeds showed defined on some seeds and None on others."""
    return frozenset(_tier_file().get("sometimes_undefined", []))


def structure_only(benchmark: str, split: str) -> bool:
    """A split whose seed spread has not been measured: its snapshots check keys and missing values, not numbers
    (``unlearn/gate/tolerances.json``, ``"unmeasured"``)."""
    return f"{benchmark}|{split}" in _tier_file().get("unmeasured", [])


def metric_snapshot_of(benchmark: str):
    """The ``metric_snapshot(cell)`` function of a benchmark (what its snapshots pin), from the registry."""
    from unlearn.benchmarks import BENCHMARKS

    return BENCHMARKS.get(benchmark).metric_snapshot


def flatten_amber(text: str) -> dict[str, str]:
    """``{"step1.knowmem_f": "0.1458", ...}`` from an amber-serialised dict of numbers (nested dicts allowed)."""
    out, path = {}, []
    for line in str(text).splitlines():
        m = _LINE.match(line)
        if m:
            key, value = m.groups()
            if value.startswith("dict({"):
                path.append(key)
            else:
                out[".".join(path + [key])] = value
        elif line.strip().startswith("})") and path:
            path.pop()
    return out


def within(benchmark: str, new: dict[str, str], old: dict[str, str], numbers: bool = True,
           cell: str | None = None) -> list[str]:
    """What differs beyond the tolerances (empty: the snapshots match); ``numbers=False``: only keys and values
    that are not numbers (None, NaN) are compared. ``cell`` (``method|split``): a value None on one side and a
    number on the other is accepted where the seeds showed that cell's value both ways (:func:`sometimes_undefined`)."""
    bad = [f"{k}: only in {'the run' if k in new else 'the snapshot'}" for k in sorted(set(new) ^ set(old))]
    for key in sorted(set(new) & set(old)):
        a, b = new[key], old[key]
        try:
            x, y = float(a), float(b)
        except ValueError:
            either_way = cell is not None and "None" in (a, b) and \
                f"{benchmark}|{cell}|{key.rsplit('.', 1)[-1]}" in sometimes_undefined()
            if a != b and not either_way:
                bad.append(f"{key}: {a} vs {b}")
            continue
        if not numbers:
            if (x != x) != (y != y):  # NaN on one side only
                bad.append(f"{key}: {a} vs {b}")
            continue
        tol = tolerance(benchmark, key.rsplit(".", 1)[-1])
        if not abs(x - y) <= tol * (1 + 1e-9):  # NaN never matches
            bad.append(f"{key}: {a} vs {b} (tolerance {tol:.3g})")
    return bad


class TierSnapshots(AmberSnapshotExtension):
    """Snapshots in one folder per test file (one .ambr each) under :attr:`root`, matched within the tier's measured
    spread of :attr:`benchmark`'s metrics (:func:`snapshots_of` makes one class per benchmark)."""

    benchmark = ""
    numbers = True  # False: keys and missing values only (a split whose seed spread is not measured)
    cell: str | None = None  # "method|split"
    root: str | None = None  # None: the snapshots/ folder beside the test file's folder (this project's evals/)

    @classmethod
    def dirname(cls, *, test_location) -> str:
        test = Path(test_location.filepath)
        return str(Path(cls.root or test.resolve().parent.parent / "snapshots") / test.stem)

    def matches(self, *, serialized_data, snapshot_data) -> bool:
        return snapshot_data is not None and not within(self.benchmark, flatten_amber(serialized_data),
                                                        flatten_amber(snapshot_data), self.numbers, self.cell)


@lru_cache(maxsize=None)
def snapshots_of(benchmark: str, split: str | None = None, method: str | None = None,
                 root: str | None = None) -> type[TierSnapshots]:
    """The snapshot extension of one benchmark's cells: ``snapshot(extension_class=snapshots_of("tofu", split,
    method))``; ``root``: the folder holding the snapshot folders (default: see :attr:`TierSnapshots.root`)."""
    numbers = not (split and structure_only(benchmark, split))
    cell = f"{method}|{split}" if method and split else None
    return type(f"{benchmark.capitalize()}Snapshots", (TierSnapshots,),
                {"benchmark": benchmark, "numbers": numbers, "cell": cell, "root": root})
