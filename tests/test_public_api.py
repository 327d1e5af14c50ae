"""The public API: `from vector_search import Engine, Result, VectorSearchError` works, and a bare
`import vector_search` loads none of it (the CLI's start-up and every tool that imports the package stay light)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import vector_search
from vector_search.engine import Engine, EngineError, Result
from vector_search.errors import VectorSearchError


def test_the_public_names_are_the_library_s_own() -> None:
    from vector_search import Engine as PublicEngine
    from vector_search import EngineError as PublicEngineError
    from vector_search import Result as PublicResult
    from vector_search import VectorSearchError as PublicError

    assert (PublicEngine, PublicEngineError, PublicResult, PublicError) == (Engine, EngineError, Result, VectorSearchError)
    assert set(vector_search.__all__) <= set(dir(vector_search))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Engin'"):
        vector_search.Engin  # noqa: B018


def test_importing_the_package_loads_no_engine() -> None:
    code = "import sys, vector_search; print(sorted(m for m in sys.modules if m.startswith(('vector_search.', 'numpy'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["vector_search.config", "vector_search.errors"]
