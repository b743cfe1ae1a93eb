"""Benchmarks: artifacts side by side, per-stage photo pipeline timing, int8 error sources."""
