"""gotrue-lite benchmark suite: `python -m bench` (see docs/performance.md)."""
