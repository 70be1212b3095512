"""Generations: requests, events, the per-generation state machine, the registry."""
