"""The REST API: one module of routes per resource, with its schemas beside it."""
