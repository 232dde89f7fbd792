"""benchmarks package (built in later issues)."""
