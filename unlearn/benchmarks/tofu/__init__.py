"""TOFU: see README.md in this folder. Importing the package registers the benchmark."""

from unlearn.benchmarks.tofu.benchmark import TofuBenchmark

__all__ = ["TofuBenchmark"]
