"""The engine: the one object the CLI, the app, the HTTP API and the evaluation ask for answers
(core.py), and what it loaded from a store, replaced whole when the store changes (loaded.py)."""

from vector_search.answers import Result
from vector_search.engine.core import Engine, EngineError
from vector_search.engine.loaded import Loaded, loaded_once

__all__ = ["Engine", "EngineError", "Loaded", "Result", "loaded_once"]
