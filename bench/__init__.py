"""Benchmarks: one harness, figures printed as name=value lines."""
