"""Format-1 stores (one `features.npz`, rewritten whole at every save) are converted on first open.

The conversion writes the same rows, in the same order, as a format-2 generation (store.py), then
removes the npz. It takes the store's writer lock; when it cannot write (a read-only folder, a
writer busy, a full disk) the npz is read in memory as before and converted another time.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from vector_search import fileio
from vector_search.store import locks
from vector_search.store.files import LEGACY_FILE, MANIFEST_FILE
from vector_search.store.store import Item, Store, StoreError

log = logging.getLogger(__name__)

LEGACY_VERSION = 1


def load_legacy(directory: Path) -> Store:
    """A format-1 store read whole into memory (not converted); StoreError if damaged."""
    file = directory / LEGACY_FILE
    try:
        with open(file, "rb") as f:
            stamp = os.fstat(f.fileno())
            data = fileio.load_npz(f)
        meta = json.loads(str(data["meta"]))
        n = len(data["paths"])
        if meta.get("version") != LEGACY_VERSION:
            raise StoreError(f"feature store {file} has format {meta.get('version')}, expected {LEGACY_VERSION}")
        if data["vectors"].ndim != 2 or data["vectors"].shape[0] != n or any(len(data[k]) != n for k in ("sizes", "mtimes", "hashes")):
            raise StoreError(f"feature store {file} is inconsistent")
        items = [Item(str(p), int(s), int(m), str(h)) for p, s, m, h in zip(data["paths"], data["sizes"], data["mtimes"], data["hashes"])]
        store = Store(directory, meta["encoder"], meta["dataset"], items, data["vectors"].astype(np.float32, copy=False))
    except StoreError:
        raise
    except Exception as err:  # truncated zip, missing keys, bad JSON...
        raise StoreError(f"feature store {file} is damaged ({type(err).__name__}: {err})") from None
    store.stamp = (stamp.st_ino, stamp.st_size, stamp.st_mtime_ns)  # any manifest written later differs: readers reload
    return store


def migrate(directory: Path) -> Store:
    """Convert the format-1 store in `directory` (identical vectors and items), or read it in memory
    when it cannot be written now; says which in the log (the CLI prints it)."""
    legacy = load_legacy(directory)
    try:
        with locks.writer_lock(directory, f"the feature store {directory}", wait=False):
            if not (directory / MANIFEST_FILE).exists():  # else another process converted it meanwhile
                legacy.save()
                log.warning(f"converted the feature store {directory} to format 2 ({len(legacy)} rows, same vectors); "
                            f"{LEGACY_FILE} is removed")
            return Store.load(directory, convert=False)
    except (OSError, locks.LockBusyError) as err:
        log.warning(f"the feature store {directory} has the old format ({LEGACY_FILE}) and cannot be converted now ({err}): "
                    "it is read whole into memory until it is")
        return legacy
