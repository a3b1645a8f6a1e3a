"""Benchmarks: each compares a subject with a floor measured in the same run (see bench/harness.py)."""
