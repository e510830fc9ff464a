"""Benchmarks of the platform, each runnable on its own: `uv run python -m bench.<name>` (see README.md)."""
