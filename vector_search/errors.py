"""One error family: every error the library raises on purpose derives from VectorSearchError.

The CLI and the app catch this one type and show its message in one line; anything else is a
bug and keeps its traceback. Subclasses keep a builtin base too (ValueError, OSError, KeyError,
...) where callers rely on it.
"""

from __future__ import annotations


class VectorSearchError(Exception):
    """Base of the library's errors; `str(err)` is the plain message, also for KeyError subclasses."""

    __str__ = Exception.__str__  # KeyError would print repr(message), quotes and all
