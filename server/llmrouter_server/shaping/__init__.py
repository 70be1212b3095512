"""Output shaping: the stages text passes through between a route and the log."""
