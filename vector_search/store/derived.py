"""Derived arrays of a store (joint vectors, the 2-D map): caches saved beside its files.

Each is `<name>.npy` with a `<name>.json` sidecar recording what it was made from (the store's
fingerprint, or its generation for row-aligned arrays) and the npy's checksum. A stale, damaged
or missing one is computed again by its caller: it is never a source of truth.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from vector_search import config, fileio
from vector_search.store.files import VERIFY_AT_OPEN_BYTES

log = logging.getLogger(__name__)


def save_array(directory: Path, name: str, array: np.ndarray, key: dict[str, object], **meta: object) -> None:
    """Save a derived array tagged with `key` (what it was made from: a store's fingerprint, or its
    generation for a row-aligned array, valid for the first rows of every later store of it).

    A cache: in read-only mode it is not saved; when it cannot be written (a full disk, a read-only
    folder) it is left unsaved, with a warning; either way it is computed again next time."""
    if config.read_only():
        return
    try:
        with fileio.atomic_paths(directory / f"{name}.npy", directory / f"{name}.json") as (npy, sidecar):
            fileio.write_npy(npy, array)
            fileio.write_json(sidecar, {**key, **meta, "crc32": fileio.checksum(npy)})
    except OSError as err:
        log.warning("cannot save %s (%s); it will be computed again", name, err)


def load_array(directory: Path, name: str, key: dict[str, object], rows: int, mmap: bool = False, fewer: bool = False,
               verify: bool = False, **meta: object) -> np.ndarray | None:
    """A derived array saved by save_array with this `key` and `meta`, of `rows` rows (or fewer,
    with `fewer`), memory-mapped with `mmap`; None if absent, stale or damaged (its checksum): then
    the caller computes it again, and a damaged one is said in one line. The checksum is read
    whole when the file is at most VERIFY_AT_OPEN_BYTES or with `verify` (by `vector-search index`):
    as for a store's vectors, the 1.5 GB joint vectors of a 1M store are checked by every index, not
    at every first query (seconds)."""
    file = directory / f"{name}.npy"
    try:
        saved = fileio.load_json(directory / f"{name}.json")
        if {k: v for k, v in saved.items() if k != "crc32"} != {**key, **json.loads(json.dumps(meta))}:
            return None
        if verify or file.stat().st_size <= VERIFY_AT_OPEN_BYTES:
            fileio.verify(file, saved.get("crc32"))
        array = fileio.load_npy(file, mmap=mmap)
        return array if len(array) == rows or (fewer and len(array) < rows) else None
    except fileio.DamagedFileError as err:
        log.warning("%s: computing it again", err)
    except (OSError, ValueError, AttributeError):
        pass
    return None
