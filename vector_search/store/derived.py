"""Derived arrays of a store (joint vectors, the 2-D map): caches saved beside its files.

Each is `<name>.npy` with a `<name>.json` sidecar recording what it was made from (the store's
fingerprint, or its generation for row-aligned arrays) and the npy's checksum. A stale, damaged
or missing one is computed again by its caller: it is never a source of truth.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import numpy as np

from vector_search import fileio

if TYPE_CHECKING:
    from vector_search.store.store import Store

log = logging.getLogger(__name__)


def save_array(store: Store, name: str, array: np.ndarray, rows: bool = False, **meta: object) -> None:
    """Save a derived array (e.g. joint vectors) tagged with the store's fingerprint, or with its
    generation when `rows` (row-aligned, valid for the first rows of every later store of it).

    A cache: when it cannot be written (a full disk, a read-only store) it is left unsaved, with
    a warning, and computed again next time."""
    try:
        with fileio.atomic_paths(store.directory / f"{name}.npy", store.directory / f"{name}.json") as (npy, sidecar):
            fileio.write_npy(npy, array)
            fileio.write_json(sidecar, {**_key(store, rows), **meta, "crc32": fileio.checksum(npy)})
    except OSError as err:
        log.warning("cannot save %s (%s); it will be computed again", name, err)


def load_array(store: Store, name: str, mmap: bool = False, rows: bool = False, **meta: object) -> np.ndarray | None:
    """A derived array saved by save_array (memory-mapped with `mmap`), or None if absent, stale or
    damaged (its checksum): then the caller computes it again, and a damaged one is said in one line."""
    file = store.directory / f"{name}.npy"
    try:
        saved = fileio.load_json(store.directory / f"{name}.json")
        if {k: v for k, v in saved.items() if k != "crc32"} != {**_key(store, rows), **json.loads(json.dumps(meta))}:
            return None
        fileio.verify(file, saved.get("crc32"))
        array = fileio.load_npy(file, mmap=mmap)
        return array if len(array) == len(store) or (rows and len(array) < len(store)) else None
    except fileio.DamagedFileError as err:
        log.warning("%s: computing it again", err)
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _key(store: Store, rows: bool) -> dict[str, object]:
    return {"generation": store.generation} if rows else {"fingerprint": store.fingerprint}
