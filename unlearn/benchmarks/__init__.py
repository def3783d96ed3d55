"""Benchmarks as pluggable units. Each benchmark is a package folder ``unlearn/benchmarks/<name>/`` holding its
data loaders and synthetic generator (``data.py``), metrics (``metrics.py``), recipes, evaluator and cell
(``benchmark.py``) and a README (paper, protocol, conformance evidence); ``base.py`` is what they share (the
registry, the :class:`~unlearn.benchmarks.base.Benchmark` base, the method runner, summary columns). A cell is
(benchmark, method, split); ``evals/`` and ``unlearn bench`` both run cells through
``BENCHMARKS[name](...).run_cell``. Every package folder here is imported, so each registers itself; so is every
module named in the ``unlearn.benchmarks`` entry-point group (a benchmark package of its own, with its recipes in
its class: :attr:`~unlearn.benchmarks.base.Benchmark.recipes`)."""

import importlib
import pkgutil

from unlearn.registry import PluginError, load_entry_points
from unlearn.benchmarks.base import (BENCHMARKS, DATA_CHOICES, Benchmark, TokenCounter, merged_for_evaluation,
                                     peak_memory_mb, round_sig, summary_columns, tier_settings)

# the built-in three first, in the order of every table; then any other folder, by name
_FIRST = ("tofu", "muse", "wmdp")
for _name in _FIRST + tuple(sorted(i.name for i in pkgutil.iter_modules(__path__) if i.ispkg and i.name not in _FIRST)):
    importlib.import_module(f"{__name__}.{_name}")

from unlearn.benchmarks.tofu.benchmark import Profile, TofuBenchmark, profile_for  # noqa: E402
from unlearn.benchmarks.muse.benchmark import MuseBenchmark  # noqa: E402
from unlearn.benchmarks.wmdp.benchmark import WmdpBenchmark  # noqa: E402

__all__ = ["BENCHMARKS", "Benchmark", "BenchmarkPluginError", "DATA_CHOICES", "MuseBenchmark", "Profile",
           "TofuBenchmark", "TokenCounter", "WmdpBenchmark", "merged_for_evaluation", "peak_memory_mb", "profile_for",
           "round_sig", "summary_columns", "tier_settings"]

ENTRY_POINTS = "unlearn.benchmarks"  # [project.entry-points."unlearn.benchmarks"] my_bench = "my_package.my_bench"


class BenchmarkPluginError(PluginError):
    """A benchmark plugin that fails to import; the message names it (a broken plugin is not skipped)."""


load_entry_points(ENTRY_POINTS, "benchmark", BenchmarkPluginError)
