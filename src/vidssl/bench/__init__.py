"""Benchmarks behind ``vidssl bench``.

Benchmark logic behind ``vidssl bench …`` (the thin CLI modules live in `vidssl.commands`) and the
standalone benchmark scripts (``python -m vidssl.bench.engine_overhead``, ...).
"""
