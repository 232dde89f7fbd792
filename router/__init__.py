"""router package (built in later issues)."""
