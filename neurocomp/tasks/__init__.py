"""Benchmark tasks: deterministic, seeded generators of inputs and targets."""
