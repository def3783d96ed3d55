"""MUSE: see README.md in this folder. Importing the package registers the benchmark."""

from unlearn.benchmarks.muse.benchmark import MuseBenchmark

__all__ = ["MuseBenchmark"]
