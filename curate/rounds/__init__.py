"""Rounds: a strategy (scorer + selector) applied to the pool becomes a round of tasks, assigned to people."""
