"""The spaces the engine searches: image vectors as compared, and joint (word-space) vectors,
each with its saved index. Both are derived from a store and rebuilt when it changes.

Which index: Annoy below ANNOY_MAX rows (the seed's choice, exact on 1000 photos), faiss IVF-PQ
with an exact re-rank and a fresh segment above it (segments.py), or the kind named in the
store's metadata (`vector-search index --index KIND`). On a big store nothing here holds the
N x dim matrix: the image space's rows are computed on demand (rows.SpaceRows).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vector_search.search.index import Index, load_or_build
from vector_search.search.rows import CHUNK, SpaceRows
from vector_search.search.segments import SegmentedIndex, open_segmented
from vector_search.search.vectors import normalize
from vector_search.store.files import finite_rows
from vector_search.store.store import Store

log = logging.getLogger(__name__)

# Rows from which the IVF index replaces Annoy, measured (bench/bench_scale.py threshold, CPU per
# query, recall@10): 10k Annoy 4.0 ms 0.978 / IVF 5.7 ms 0.965; 30k Annoy 12.7 ms 0.999 / IVF
# 6.1 ms 1.0; 100k Annoy 46 ms / IVF 6.3 ms (Annoy's search_k grows with n, and it rebuilds whole).
ANNOY_MAX = 20_000


def index_kind(store: Store) -> str:
    """The store's recorded index kind, else Annoy below ANNOY_MAX rows and IVF from there.
    IVF trains its quantizers on the rows: a store of fewer than 2 rows is scanned exactly."""
    kind = store.index_kind or ("annoy" if len(store) < ANNOY_MAX else "ivf")
    return "exact" if kind == "ivf" and len(store) < 2 else kind


def _live_only(index: Index, vectors: np.ndarray, store: Store) -> Index | SegmentedIndex:
    """`index` (over every row), answering live rows only: a store too big to be compacted at every
    update (updates.COMPACT_BELOW_BYTES: 13k rows of 1280 floats) keeps deleted rows below ANNOY_MAX,
    and rows whose vectors are damaged (not finite) are never answered."""
    live = _searchable(store)
    return index if live is None else SegmentedIndex(index, vectors, live)


def _searchable(store: Store) -> np.ndarray | None:
    """The live rows whose vectors are finite (None: every row), said in one line when some are not."""
    finite = finite_rows(store.vectors)
    if finite.all():
        return store.live
    log.warning("%d vectors in %s are damaged (not finite): left out until `vector-search index %s` embeds them again",
                len(finite) - finite.sum(), store.directory / store.manifest.vectors, store.dataset)
    return finite if store.live is None else finite & store.live


def _segmented(store: Store, name: str, source: np.ndarray, centre: bool, merge: bool) -> SegmentedIndex:
    return open_segmented(store.directory / f"{name}.ivf", source, store.generation, store.live, centre=centre, merge=merge)


@dataclass(frozen=True)
class ImageSpace:
    """Image vectors as searched: L2-normalised, then centred on the collection's mean.

    Centring removes the direction every photo shares; measured on Pascal Sentences it lifts
    leave-one-out precision@10 from 0.537 to 0.564 (see `vector-search evaluate`).
    """

    mean: np.ndarray
    vectors: np.ndarray | SpaceRows
    index: Index | SegmentedIndex

    def project(self, vectors: np.ndarray) -> np.ndarray:
        return normalize(vectors) - self.mean

    @classmethod
    def of(cls, store: Store, merge: bool = False) -> "ImageSpace":
        """The space of a store, with its saved index (built and saved when missing or stale;
        `merge`: an IVF index takes in its fresh rows, see segments.py)."""
        kind = index_kind(store)
        if kind == "ivf":
            index = _segmented(store, "images", store.vectors, centre=True, merge=merge)
            return cls(index.rows.mean, index.rows, index)
        units = normalize(store.vectors)
        mean = units.mean(axis=0) if len(units) else np.zeros(units.shape[1], np.float32)
        vectors = units - mean
        index = load_or_build(store.directory / "images.ann", vectors, f"{store.fingerprint}-centred", kind=kind)
        return cls(mean, vectors, _live_only(index, vectors, store))


JOINT_KEEP = 3  # joint models whose files a store keeps: the page compares two text spaces; a retrained model's old files go


def joint_name(model) -> str:
    """The stem of a joint model's files in a store (rows, index): `joint-<its weights' hash>`."""
    return f"joint-{model.fingerprint[:16]}"


@dataclass(frozen=True)
class JointSpace:
    """The joint (word-space) vectors of a store's images under one joint model, and their index.

    Each model has its own files in the store (`joint-<hash>.npy` rows, `.ann` or `.ivf` index),
    so switching models (the page's GloVe-vs-sentence comparison) rebuilds nothing; those of all
    but the JOINT_KEEP most recently built models are deleted when another one is built."""

    vectors: np.ndarray
    index: Index | SegmentedIndex

    @classmethod
    def of(cls, store: Store, model, merge: bool = False) -> "JointSpace":
        """The joint vectors are cached in the store (`joint_rows`); the index over them is IVF with a
        fresh segment on a big store, else rebuilt whenever the store changes. `merge` (`index`): the
        IVF index takes in its fresh rows, and big joint vectors have their checksum read."""
        name = joint_name(model)
        vectors = joint_rows(store, model, verify=merge)
        if index_kind(store) == "ivf":
            return cls(vectors, _segmented(store, name, vectors, centre=False, merge=merge))
        index = load_or_build(store.directory / f"{name}.ann", vectors, f"{store.fingerprint}-{model.fingerprint}", kind=index_kind(store))
        return cls(vectors, _live_only(index, vectors, store))


def _transform(model, source: np.ndarray, done: np.ndarray) -> np.ndarray:
    """`done` (the joint vectors of the first rows of `source`) followed by those of the rest, chunkwise."""
    vectors = np.zeros((len(source), done.shape[1]), np.float32)
    vectors[: len(done)] = done
    for first in range(len(done), len(source), CHUNK):
        vectors[first : first + CHUNK] = model.transform(source[first : first + CHUNK])
    return vectors


def joint_rows(store: Store, model, verify: bool = False) -> np.ndarray:
    """The joint vectors of a store's rows under a model, memory-mapped (200 MB at 1M x 50): the one
    cache of them. Saved with the model and the store generation they were made for: within a
    generation rows only get appended, so only the rows added since are transformed (the store's
    fingerprint changes with every append). `verify`: their checksum read even on a big store (`index`)."""
    key, name = model.fingerprint, joint_name(model)
    done = store.load_array(name, mmap=True, rows=True, verify=verify, model=key)
    if done is not None and len(done) == len(store):
        return done
    vectors = _transform(model, store.vectors, np.zeros((0, model.meta["words"]["dim"]), np.float32) if done is None else done)
    np.nan_to_num(vectors, copy=False, nan=0, posinf=0, neginf=0)  # of damaged rows, never answered (_live_only)
    store.save_array(name, vectors, rows=True, model=key)
    prune_joint(store.directory, keep=name)
    saved = store.load_array(name, mmap=True, rows=True, model=key)
    return vectors if saved is None or len(saved) != len(store) else saved


def prune_joint(directory: Path, keep: str) -> None:
    """Delete the joint files of all but the JOINT_KEEP models built last (by file time; `keep`, just
    built, stays), and those of the one shared joint index of older versions (joint.ann, joint-rows)."""
    groups: dict[str, list[Path]] = {}
    for path in directory.glob("joint*"):
        groups.setdefault(path.name.split(".")[0], []).append(path)
    legacy = [groups.pop(stem, []) for stem in ("joint", "joint-rows")]
    newest = sorted((stem for stem in groups if stem != keep), key=lambda stem: -max(_mtime(p) for p in groups[stem]))
    for files in [*legacy, *(groups[stem] for stem in newest[JOINT_KEEP - 1 :])]:
        for path in files:
            try:
                path.unlink(missing_ok=True)
            except OSError as err:  # a read-only store: its files stay
                log.debug("cannot delete %s: %s", path, err)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
