"""Server mode: which folders a deployed app may touch.

With $VECTOR_SEARCH_ROOT set (see config.serve_root), every folder a visitor types (the dataset
to index and show, the feature store to write) must lie under that root once resolved: `..`
is refused outright, and symbolic links are followed and the place they lead to is checked, so
neither can walk out. Unset (a laptop), any folder is accepted, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from vector_search import config
from vector_search.errors import VectorSearchError


class PathNotAllowedError(VectorSearchError, PermissionError):
    """A folder outside the server's root (or written with `..`)."""


def check_typed(path: str | os.PathLike) -> None:
    """PathNotAllowedError if `path` cannot name a folder at all (a NUL byte: no system call takes it)."""
    if "\0" in os.fsdecode(path):
        raise PathNotAllowedError("a folder name cannot hold a NUL byte")


def check_allowed(path: str | os.PathLike, purpose: str) -> Path:
    """`path` resolved (symlinks followed), if this server may use it for `purpose` ("dataset
    folder", "feature store folder"); else PathNotAllowedError saying so in one line.

    A relative path is taken under the root in server mode (under the working folder otherwise).
    """
    check_typed(path)
    root = config.serve_root()
    given = Path(path).expanduser()
    if root is None:
        return given.resolve()
    if ".." in given.parts:
        raise PathNotAllowedError(f"the {purpose} may not contain `..`: give a folder under {root}")
    try:
        resolved = (root / given).resolve()  # an absolute `given` replaces root here
    except (OSError, RuntimeError) as err:  # a symlink loop
        raise PathNotAllowedError(f"the {purpose} {given} cannot be resolved: {err}") from None
    if not resolved.is_relative_to(root):
        shown = f"{given} (which leads to {resolved})" if resolved != given else str(given)
        raise PathNotAllowedError(f"the {purpose} must be under {root} on this server, not {shown}")
    return resolved
