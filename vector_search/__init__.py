"""vector_search: semantic search over images and words.

The public API, loaded on first use so that `import vector_search` stays light:

    from vector_search import Engine
    engine = Engine()                      # the feature store under $VECTOR_SEARCH_FEATURES, else features/
    engine.index("photos/")                # embed + index a folder (incremental)
    engine.search("cat on a sofa", k=5)    # [Result(item=path, distance=cosine distance), ...]
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vector_search.config import quiet_tensorflow

if TYPE_CHECKING:
    from vector_search.engine import Engine, EngineError, Result
    from vector_search.errors import VectorSearchError

quiet_tensorflow()

__version__ = "0.1.0"

# name -> the module that defines it, imported when the name is first asked for
_LAZY = {
    "Engine": "vector_search.engine",
    "EngineError": "vector_search.engine",
    "Result": "vector_search.engine",
    "VectorSearchError": "vector_search.errors",
}
__all__ = ["Engine", "EngineError", "Result", "VectorSearchError", "__version__"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vector_search' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
