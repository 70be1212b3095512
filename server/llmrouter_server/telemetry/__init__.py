"""What the server reports about itself: stats, logs, metrics and traces.

Each is an observer of generations (``streams/observers.py``) or set up beside
them; none is imported by the data path.
"""
