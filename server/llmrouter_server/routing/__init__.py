"""Routing: from a model name to targets, and from targets to deltas."""
