"""One error family: every error class of the library derives from VectorSearchError, so the CLI and
the app catch one type; each keeps the builtin base callers rely on, and prints its plain message."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import vector_search
from vector_search.errors import VectorSearchError


def library_errors() -> list[type[BaseException]]:
    """Every exception class defined in a module of the package."""
    found = []
    for info in pkgutil.walk_packages(vector_search.__path__, "vector_search."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        found += [
            obj for _, obj in inspect.getmembers(module, inspect.isclass)
            if issubclass(obj, BaseException) and obj.__module__ == info.name
        ]
    return found


def test_every_error_class_is_a_vector_search_error() -> None:
    errors = library_errors()
    assert len(errors) >= 15  # the walk found the modules' errors
    assert [e.__qualname__ for e in errors if not issubclass(e, VectorSearchError)] == []


@pytest.mark.parametrize("name", ["UnknownWordError", "ClassNameError", "StoreError", "DatasetNotFoundError", "UsageError"])
def test_errors_keep_a_builtin_base_and_print_their_message(name: str) -> None:
    [error] = [e for e in library_errors() if e.__name__ == name]
    builtin = [b for b in error.__mro__ if b.__module__ == "builtins" and b not in (Exception, BaseException, object)]
    assert builtin, f"{name} has no builtin base such as ValueError"
    assert str(error("the message 'x'")) == "the message 'x'"  # also for KeyError subclasses
