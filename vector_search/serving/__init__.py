"""Serving the engine to others: the server-mode rules (rules.py: a root folder, read-only, upload
limits), shared by the app and the HTTP API (http.py: `vector-search serve`, imported only there)."""

from vector_search.serving.rules import PathNotAllowedError, check_allowed, check_typed

__all__ = ["PathNotAllowedError", "check_allowed", "check_typed"]
