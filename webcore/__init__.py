"""The shared web layer: errors and their JSON rendering, request validation, field types.

It sits at the bottom of the dependency graph with ``eventstore``: ``auth``,
``executor`` and ``collab`` all build their routes on it, and it imports none of them.
"""
