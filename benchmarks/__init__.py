"""numsync benchmarks: ``python -m benchmarks`` (see benchmarks/harness.py and docs/benchmarks.md)."""
