"""The expectation tables are consistent: every known failure and every declared-undecided row names a row that
exists, no row is both, and every known failure says in one line what the method does and what was measured."""

import pytest

from evals import expectations as E
from unlearn.benchmarks import BENCHMARKS
from unlearn.methods import method_names

TABLES = {"tofu": (E.TOFU_EXPECTATIONS, E.DEFAULT_EXPECTATIONS, E.KNOWN_FAILURES),
          "muse": (E.MUSE_EXPECTATIONS, E.DEFAULT_EXPECTATIONS, E.MUSE_KNOWN_FAILURES),
          "wmdp": (E.WMDP_EXPECTATIONS, E.DEFAULT_EXPECTATIONS, E.WMDP_KNOWN_FAILURES),
          "unsafe": (E.UNSAFE_EXPECTATIONS, E.UNSAFE_DEFAULT, E.UNSAFE_KNOWN_FAILURES)}
TINY_SPLITS = {"tofu": ("forget01", "forget05", "forget10"), "muse": ("news", "news-scal", "news-sust"),
               "wmdp": ("synthetic",), "unsafe": ("synthetic",)}


def rows(bench: str, method: str) -> set[str]:
    table, default, _ = TABLES[bench]
    out = {name for name, _, _ in E.expectation_rows(table, method, default)}
    return out | ({name for name, _, _ in E.ROBUSTNESS_EXPECTATIONS.get(method, [])} if bench == "tofu" else set())


@pytest.mark.parametrize("bench", sorted(TABLES))
def test_known_failures_name_real_rows_with_a_reason(bench):
    assert set(TINY_SPLITS[bench]) <= set(BENCHMARKS.get(bench).splits) | {"synthetic"}
    for (method, split, name), reason in TABLES[bench][2].items():
        assert split in TINY_SPLITS[bench], (bench, method, split)
        if method != "target":  # the target/gold sanity checks have their own names
            assert method in method_names() and name in rows(bench, method), (bench, method, split, name)
        assert (bench, method, split, name) not in E.UNDECIDED, f"{bench} {method} {split} {name}: known failure and undecided"
        assert "\n" not in reason and "measured" in reason and not reason.startswith("measured"), \
            f"{bench} {method} {split} {name}: say what the method does on the tier, then the measured value: {reason!r}"


def test_undecided_rows_name_real_rows():
    assert E.UNDECIDED, "evals/undecided.json is missing or empty"
    for (bench, method, split, name), why in E.UNDECIDED.items():
        assert bench in TABLES and split in TINY_SPLITS[bench], (bench, method, split)
        if method != "target":  # the target/gold sanity rows have their own names
            assert method in method_names() and name in rows(bench, method), (bench, method, split, name)
        assert "seeds 0/1/2" in why, why
