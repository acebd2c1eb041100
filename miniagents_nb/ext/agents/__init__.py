"""Pre-packaged agents, by theme."""
