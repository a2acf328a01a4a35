"""Benchmarks for Wardwise (run each as `python -m bench.<name>`)."""
