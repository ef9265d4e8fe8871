"""Benchmarks: retrieval quality on public data and speed at scale. Run ``python -m bench NAME --help``."""
