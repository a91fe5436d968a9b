"""Support package of ``scripts/bench_calls.py`` (concurrent recorded calls per core)."""
