"""Format-1 stores (one `features.npz`, rewritten whole at every save), read for store.py to convert.

`read_legacy` parses and checks the npz; `Store.load` converts it on first open (the same rows, in
the same order, written as a format-2 generation, then the npz removed) or, when it cannot write now
(a read-only folder, a writer busy, a full disk), keeps it in memory and converts another time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vector_search import fileio
from vector_search.store.files import LEGACY_FILE

LEGACY_VERSION = 1


@dataclass(frozen=True)
class Legacy:
    """What a format-1 store holds: its items as (path, size, mtime_ns, sha256) rows and their vectors."""

    encoder: str
    dataset: str
    rows: list[tuple[str, int, int, str]]
    vectors: np.ndarray  # float32 (n, dim)
    stamp: tuple[int, int, int]  # (inode, size, mtime_ns) of the npz: any manifest written later differs


def read_legacy(directory: Path) -> Legacy:
    """The format-1 store in `directory`; ValueError naming the file if it is damaged."""
    file = directory / LEGACY_FILE
    try:
        with open(file, "rb") as f:
            stat = os.fstat(f.fileno())
            data = fileio.load_npz(f)
        meta = json.loads(str(data["meta"]))
        n = len(data["paths"])
        if meta.get("version") != LEGACY_VERSION:
            raise ValueError(f"feature store {file} has format {meta.get('version')}, expected {LEGACY_VERSION}")
        if data["vectors"].ndim != 2 or data["vectors"].shape[0] != n or any(len(data[k]) != n for k in ("sizes", "mtimes", "hashes")):
            raise ValueError(f"feature store {file} is inconsistent")
        rows = [(str(p), int(s), int(m), str(h)) for p, s, m, h in zip(data["paths"], data["sizes"], data["mtimes"], data["hashes"])]
        vectors = data["vectors"].astype(np.float32, copy=False)
        return Legacy(meta["encoder"], meta["dataset"], rows, vectors, (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except ValueError:
        raise
    except Exception as err:  # truncated zip, missing keys, bad JSON...
        raise ValueError(f"feature store {file} is damaged ({type(err).__name__}: {err})") from None
