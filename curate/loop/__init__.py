"""Loops: the pool-based active-learning loop, the stream gate with drift monitoring, evaluation and stopping."""
