"""The tier's snapshots are matched within the spread the tier shows between seeds (unlearn/gate/snapshots.py): a move
inside it matches, one beyond it, a key added or gone, or a value turned None or NaN does not."""

from unlearn.gate import snapshots
from unlearn.gate.snapshots import FLOOR, flatten_amber, within

AMBER = """  dict({
    'forget_efficacy': 0.6074,
    'mia_auc': 0.9725,
    'step1': dict({
      'knowmem_f': 0.1458,
      'privleak': -100.0,
    }),
    'retain_performance': 0.9311,
  })"""


def test_flatten_reads_nested_dicts():
    assert flatten_amber(AMBER) == {"forget_efficacy": "0.6074", "mia_auc": "0.9725", "step1.knowmem_f": "0.1458",
                                    "step1.privleak": "-100.0", "retain_performance": "0.9311"}


def test_matches_within_the_measured_spread_only(monkeypatch):
    monkeypatch.setattr(snapshots, "tolerances", lambda: {"toy": {"forget_efficacy": 0.2, "knowmem_f": 0.05}})
    old = flatten_amber(AMBER)
    assert within("toy", dict(old), old) == []
    assert within("toy", {**old, "forget_efficacy": "0.75"}, old) == []  # 0.14 apart, tolerance 0.2
    assert within("toy", {**old, "forget_efficacy": "0.85"}, old)  # 0.24 apart
    assert within("toy", {**old, "step1.knowmem_f": "0.2"}, old)  # nested keys read their leaf's tolerance
    assert within("toy", {**old, "mia_auc": "0.9735"}, old) == []  # no measured spread: the rounding floor
    assert within("toy", {**old, "mia_auc": f"{0.9725 + 2 * FLOOR}"}, old)
    assert within("toy", {**old, "mia_auc": "None"}, old) and within("toy", {**old, "mia_auc": "nan"}, old)
    assert within("toy", {**old, "extra": "1.0"}, old) and within("toy", {k: v for k, v in old.items() if k != "mia_auc"}, old)
    assert within("other", {**old, "forget_efficacy": "0.75"}, old)  # another benchmark's spread is not this one's


def test_an_unmeasured_split_checks_structure_only():
    old = flatten_amber(AMBER)
    assert within("toy", {**old, "forget_efficacy": "0.1"}, old, numbers=False) == []
    assert within("toy", {**old, "mia_auc": "None"}, old, numbers=False)
    assert within("toy", {**old, "mia_auc": "nan"}, old, numbers=False)
    assert within("toy", {**old, "extra": "1.0"}, old, numbers=False)


def test_a_value_defined_on_some_seeds_only_may_be_none_for_that_cell_only(monkeypatch):
    """Where the seeds showed a cell's value as a number on some and None on others (the control's relearning
    recovery: undefined when it forgot exactly nothing), None against a number matches for that cell and metric
    only; NaN, and any other cell or metric, still differ."""
    monkeypatch.setattr(snapshots, "sometimes_undefined", lambda: frozenset({"toy|npo|forget01|mia_auc"}))
    old = flatten_amber(AMBER)
    assert within("toy", {**old, "mia_auc": "None"}, old, cell="npo|forget01") == []
    assert within("toy", old, {**old, "mia_auc": "None"}, cell="npo|forget01") == []
    assert within("toy", {**old, "mia_auc": "None"}, old)  # no cell named: as before
    assert within("toy", {**old, "mia_auc": "None"}, old, cell="npo|forget05")
    assert within("toy", {**old, "forget_efficacy": "None"}, old, cell="npo|forget01")
    assert within("toy", {**old, "mia_auc": "nan"}, old, cell="npo|forget01")
