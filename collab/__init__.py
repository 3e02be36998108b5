"""collab: a real-time collaboration server for code."""

__version__ = "0.1.0"
