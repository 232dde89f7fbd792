"""simulator package (built in later issues)."""
