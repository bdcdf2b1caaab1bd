"""API tokens: stored as a SHA-256 digest and a short prefix, shown in full once, when issued."""
