"""Benchmark metrics: per-item values plus aggregates, as each benchmark's authors defined them."""
