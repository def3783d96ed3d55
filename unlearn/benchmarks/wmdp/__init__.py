"""WMDP: see README.md in this folder. Importing the package registers the benchmark."""

from unlearn.benchmarks.wmdp.benchmark import WmdpBenchmark

__all__ = ["WmdpBenchmark"]
