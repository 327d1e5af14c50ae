"""Where stores live: one folder per encoder under the feature-store root (config.features_root())."""

from __future__ import annotations

import os
from pathlib import Path

from vector_search import config
from vector_search.store.files import LEGACY_FILE, MANIFEST_FILE
from vector_search.store.store import Store, StoreError


def store_dir(features_root: str | os.PathLike | None, encoder: str) -> Path:
    """The store folder of `encoder` under `features_root` (None: config.features_root())."""
    return Path(features_root if features_root is not None else config.features_root()) / encoder


def has_store(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a store (of either format, maybe damaged)."""
    return any((Path(directory) / name).is_file() for name in (MANIFEST_FILE, LEGACY_FILE))


def store_encoders(features_root: str | os.PathLike) -> list[str]:
    """The encoders of the stores under `features_root`, sorted (empty when there is none)."""
    return sorted({p.parent.name for name in (MANIFEST_FILE, LEGACY_FILE) for p in Path(features_root).glob(f"*/{name}")})


def open_store(features_root: str | os.PathLike | None = None, encoder: str | None = None) -> Store:
    """Load the store of `encoder` under `features_root` (or the only store there when encoder is None)."""
    features_root = Path(features_root if features_root is not None else config.features_root())
    if encoder is None:
        found = store_encoders(features_root)
        if len(found) != 1:
            raise StoreError(
                f"no feature store under {features_root}: run `vector-search index DATASET_DIR` first"
                if not found
                else f"several stores under {features_root} ({', '.join(found)}): choose one with --encoder"
            )
        encoder = found[0]
    return Store.load(store_dir(features_root, encoder))
