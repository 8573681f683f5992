"""Private network namespace fixtures."""
