"""Benchmarks as pluggable units: one module per benchmark (its data recipes, evaluator and cell logic)
around a shared core (registry, method runner, summary columns). A cell is (benchmark, method, split);
``evals/`` and ``unlearn bench`` both run cells through ``BENCHMARKS[name](...).run_cell``."""

from unlearn.benchmarks.core import (BENCHMARKS, CELL_CODE_VERSION, DATA_CHOICES, TokenCounter, merged_for_evaluation,
                                     peak_memory_mb, round_sig, summary_columns, tier_settings)
from unlearn.benchmarks.tofu import Profile, TofuBenchmark, metric_snapshot, profile_for
from unlearn.benchmarks.muse import MuseBenchmark  # noqa: E402  (registers "muse")
from unlearn.benchmarks.wmdp import WmdpBenchmark  # noqa: E402  (registers "wmdp")

__all__ = ["BENCHMARKS", "CELL_CODE_VERSION", "DATA_CHOICES", "MuseBenchmark", "Profile", "TofuBenchmark", "TokenCounter", "WmdpBenchmark",
           "merged_for_evaluation", "metric_snapshot", "peak_memory_mb", "profile_for", "round_sig", "summary_columns",
           "tier_settings"]
