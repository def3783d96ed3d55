"""Forget to be unsafe: see README.md in this folder. Importing the package registers the benchmark."""

from unlearn.benchmarks.unsafe.benchmark import UnsafeBenchmark

__all__ = ["UnsafeBenchmark"]
