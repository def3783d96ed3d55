"""A row's verdict: pass, fail or inconclusive, decided from its value's 95% interval rather than the point alone.

- **pass**: the whole interval meets the bar; **fail**: none of it does; **inconclusive**: it straddles the bar
  (the tier cannot decide the row). A row without an interval (a count, a relearning excess) is decided by its
  value.
- A missing value (None) or NaN is an error before anything else: never a known failure, never inconclusive.
- **Membership rows** (``mia_gap``, ``mia_offset``, ``mia_auc``) read the cluster-bootstrap intervals over
  membership units (``intervals["membership"]``, :func:`unlearn.intervals.membership_intervals`). A method's
  ``mia_gap`` row is decided only where the gold itself is calibrated on the split (its AUC interval within
  0.5 +- :data:`MIA_BAR`); elsewhere, and with too few units for an interval, it is inconclusive.
- **Retain floor**: every row of an unlearning method other than its retain row also needs retain performance
  >= :data:`RETAIN_FLOOR` (interval-decided the same way), so a destroyed model passes nothing.
- **Seeds** (``--seeds N``): the row's outcome must be the same on every seed; seeds that disagree make it
  inconclusive (a verdict that changes with the seed is not a verdict).
- **Declared by the tier**: rows the tier cannot decide (measured over seeds: ``evals/expectations.py``,
  ``UNDECIDED``) are inconclusive whatever this run measures, so their outcome does not depend on this CPU's
  rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

AT_LEAST, AT_MOST = ">=", "<="
PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
MIA_BAR = 0.1
# Below half of the target's utility a model is destroyed, whatever it forgot: no other row of it can pass. A
# floor, not a bar fitted to any method: the retain bars proper (0.85-0.95) sit in each method's table.
RETAIN_FLOOR = 0.5
MEMBERSHIP_ROWS = ("mia_gap", "mia_offset", "mia_auc")


class MissingValue(AssertionError):
    """A row's value is None or NaN: the cell did not measure it (a bug, not a verdict)."""


@dataclass(frozen=True)
class Verdict:
    outcome: str
    value: float
    interval: list | None
    why: str  # one line: the value, its interval and the bar, and why the outcome

    def as_row(self) -> dict:
        return {"outcome": self.outcome, "value": self.value, "interval": self.interval, "why": self.why}


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x))


def meets(value: float, direction: str, bound: float) -> bool:
    return value >= bound if direction == AT_LEAST else value <= bound


def decide(value: float, interval: list | None, direction: str, bound: float) -> str:
    """pass / fail / inconclusive of ``value`` (with its interval, if any) against ``direction bound``."""
    if interval is None or any(_missing(x) for x in interval):
        return PASS if meets(value, direction, bound) else FAIL
    lo, hi = interval
    ok_lo, ok_hi = meets(lo, direction, bound), meets(hi, direction, bound)
    return PASS if ok_lo and ok_hi else FAIL if not ok_lo and not ok_hi else INCONCLUSIVE


def _fmt(x) -> str:
    return "None" if x is None else f"{x:.4g}"


def _interval_text(iv) -> str:
    return "" if not iv else f" [{_fmt(iv[0])}, {_fmt(iv[1])}]"


def row_value(cell: dict, name: str):
    return cell["summary"].get(name, cell["metrics"].get(name))


def row_interval(cell: dict, name: str) -> list | None:
    """The 95% interval of a row's value: the bootstrap over questions for the summary columns, over membership
    units for the membership rows (the retrain row's ``mia_offset`` is the gold's own); None: none measured."""
    iv = cell.get("intervals") or {}
    if name in MEMBERSHIP_ROWS:
        return (iv.get("membership") or {}).get(name)
    return (iv.get("ci") or {}).get(name)


def verdict(cell: dict, name: str, direction: str, bound: float) -> Verdict:
    """One cell's verdict on one row (see the module's rules); raises :class:`MissingValue` on None/NaN."""
    method, split = cell["method"], cell["split"]
    value = row_value(cell, name)
    if _missing(value):
        raise MissingValue(f"{method} on {split}: {name} is {value!r}: the cell did not measure it")
    interval = row_interval(cell, name)
    head = f"{name}={_fmt(value)}{_interval_text(interval)} (want {direction} {bound})"
    membership = (cell.get("intervals") or {}).get("membership")
    if name in MEMBERSHIP_ROWS:
        if not membership or interval is None:
            units = (membership or {}).get("units")
            return Verdict(INCONCLUSIVE, value, None, f"{head}: too few membership units for an interval ({units} a side)"
                           if units else f"{head}: no membership interval")
        if name == "mia_gap":
            gold = membership.get("gold_mia_offset")
            if gold is None or gold[1] > MIA_BAR:
                return Verdict(INCONCLUSIVE, value, interval,
                               f"{head}: the gold is not calibrated here (|AUC - 0.5| in {_interval_text(gold).strip() or 'no interval'}, "
                               f"want within {MIA_BAR}), so nearness to it means nothing")
    outcome = decide(value, interval, direction, bound)
    why = {PASS: "the interval meets the bar" if interval else "meets the bar",
           FAIL: "the interval misses the bar" if interval else "misses the bar",
           INCONCLUSIVE: "the interval straddles the bar"}[outcome]
    if method != "retrain" and name != "retain_performance" and outcome != FAIL:
        retain = row_value(cell, "retain_performance")
        if _missing(retain):
            raise MissingValue(f"{method} on {split}: retain_performance is {retain!r}: the floor cannot be checked")
        r_iv = row_interval(cell, "retain_performance")
        floor = decide(retain, r_iv, AT_LEAST, RETAIN_FLOOR)
        if floor != PASS:
            why = (f"retain_performance={_fmt(retain)}{_interval_text(r_iv)} "
                   + ("is under" if floor == FAIL else "straddles") + f" the floor {RETAIN_FLOOR}: a destroyed model passes nothing")
            outcome = FAIL if floor == FAIL else INCONCLUSIVE
    return Verdict(outcome, value, interval, f"{head}: {why}")


def combine(verdicts: list[Verdict]) -> tuple[str, str]:
    """One outcome over seeds: the common one, or inconclusive when the seeds disagree."""
    outcomes = {v.outcome for v in verdicts}
    if len(verdicts) == 1:
        return verdicts[0].outcome, verdicts[0].why
    lines = "; ".join(f"seed {i}: {v.outcome}, {v.why}" for i, v in enumerate(verdicts))
    if len(outcomes) == 1:
        return verdicts[0].outcome, lines
    return INCONCLUSIVE, f"the seeds disagree ({lines})"
