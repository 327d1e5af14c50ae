"""The feature store: image vectors on disk, keyed by file, updated incrementally.

One store per encoder lives in `<root>/<encoder>/`:

    features.npz         vectors, item list (relative path, size, mtime, sha256) and metadata, one atomic file
    <name>.npy/.json     derived arrays (indexes, joint vectors) saved with the fingerprint they were made from

Indexing a folder again re-embeds only new or changed files, reuses renamed ones by content
hash, drops deleted ones, and checkpoints as it goes, so an interrupted run loses little.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import config, fileio
from .embedding import Embedder, local_embedder
from .errors import VectorSearchError
from .images import ImageError, class_of, find_images, open_regular

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FEATURES_FILE = "features.npz"


class StoreError(VectorSearchError, RuntimeError):
    """A store that is missing, unreadable or was written by another version."""


@dataclass(frozen=True)
class Item:
    """One indexed file: its path relative to the dataset folder and what identifies its content."""

    path: str
    size: int
    mtime_ns: int
    sha256: str

    def matches(self, st: os.stat_result) -> bool:
        """Whether a file's stat still says it is this item (same size and mtime): no need to hash it."""
        return (self.size, self.mtime_ns) == (st.st_size, st.st_mtime_ns)


@dataclass
class Store:
    """Vectors of the images of one dataset folder, made by one encoder."""

    directory: Path
    encoder: str
    dataset: str  # the dataset folder as it was given when indexing
    items: list[Item]
    vectors: np.ndarray  # (n, dim) float32, row i is items[i]
    stamp: tuple[int, int, int] | None = None  # (inode, size, mtime) of the file it was loaded from

    def changed_on_disk(self) -> bool:
        """Whether another process has saved this store, complete, since it was loaded (saves
        replace the file, so its inode changes): a long-lived reader then loads it again, whole.
        Checkpoints of a run still indexing do not count: readers keep the last complete state."""
        file = self.directory / FEATURES_FILE
        try:
            if self.stamp is None or _stamp(os.stat(file)) == self.stamp:
                return False
            with np.load(file, allow_pickle=False) as data:  # reads the one small member
                return bool(json.loads(str(data["meta"])).get("complete", True))
        except Exception:  # deleted, or being replaced: keep answering from what is loaded
            return False

    def __len__(self) -> int:
        return len(self.items)

    @functools.cached_property
    def paths(self) -> list[str]:
        """Item paths as indexed: the dataset folder joined with each relative path."""
        return [os.path.join(self.dataset, item.path) for item in self.items]

    @functools.cached_property
    def classes(self) -> list[str]:
        return [class_of(item.path) for item in self.items]

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes whenever the set of vectors changes; derived files record it."""
        h = hashlib.sha256(f"{FORMAT_VERSION}\n{self.encoder}\n{self.vectors.shape}\n".encode())
        for item in self.items:
            h.update(f"{item.path}\0{item.sha256}\n".encode("utf-8", "surrogateescape"))
        return h.hexdigest()[:16]

    def find(self, path: str | os.PathLike) -> int | None:
        """Position of an indexed file given any path to it, or None."""
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(self.dataset))
        return self._by_path.get(rel)

    def find_content(self, sha256: str) -> int | None:
        """Position of an indexed file with this content hash, or None."""
        return self._by_hash.get(sha256)

    @functools.cached_property
    def _by_path(self) -> dict[str, int]:
        return {item.path: i for i, item in enumerate(self.items)}

    @functools.cached_property
    def _by_hash(self) -> dict[str, int]:
        return {item.sha256: i for i, item in reversed(list(enumerate(self.items)))}  # first one wins

    # --- persistence -------------------------------------------------------------------------

    def save(self, complete: bool = True) -> None:
        """Write the store atomically (writers hold its lock: see locks.py) and stamp it as saved.
        `complete=False` marks a checkpoint of a run still indexing (see changed_on_disk)."""
        meta = {"version": FORMAT_VERSION, "encoder": self.encoder, "dataset": self.dataset, "complete": complete}
        file = self.directory / FEATURES_FILE
        fileio.save_npz(
            file,
            vectors=np.ascontiguousarray(self.vectors, dtype=np.float32),
            paths=np.array([i.path for i in self.items], dtype=str),
            sizes=np.array([i.size for i in self.items], dtype=np.int64),
            mtimes=np.array([i.mtime_ns for i in self.items], dtype=np.int64),
            hashes=np.array([i.sha256 for i in self.items], dtype=str),
            meta=np.array(json.dumps(meta)),
        )
        self.stamp = _stamp(os.stat(file))

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Store":
        """Load a saved store; raises StoreError if it is missing, damaged or from another version."""
        directory = Path(directory)
        file = directory / FEATURES_FILE
        if not file.exists():
            raise StoreError(f"no feature store at {directory}: run `vector-search index DATASET_DIR` first")
        try:
            with open(file, "rb") as f:  # the stamp of the very file read, even if replaced meanwhile
                stamp = _stamp(os.fstat(f.fileno()))
                data = fileio.load_npz(f)
            meta = json.loads(str(data["meta"]))
            n = len(data["paths"])
            if meta.get("version") != FORMAT_VERSION:
                raise StoreError(f"feature store {file} has format {meta.get('version')}, expected {FORMAT_VERSION}")
            if data["vectors"].ndim != 2 or data["vectors"].shape[0] != n or any(
                len(data[k]) != n for k in ("sizes", "mtimes", "hashes")
            ):
                raise StoreError(f"feature store {file} is inconsistent")
            items = [
                Item(str(p), int(s), int(m), str(h))
                for p, s, m, h in zip(data["paths"], data["sizes"], data["mtimes"], data["hashes"])
            ]
            vectors = data["vectors"].astype(np.float32, copy=False)
            return cls(directory, meta["encoder"], meta["dataset"], items, vectors, stamp)
        except StoreError:
            raise
        except Exception as err:  # truncated zip, missing keys, bad JSON...
            raise StoreError(f"feature store {file} is damaged ({type(err).__name__}: {err})") from None

    def save_array(self, name: str, array: np.ndarray, **meta: object) -> None:
        """Save a derived array (e.g. joint vectors) tagged with this store's fingerprint.

        A cache: when it cannot be written (a full disk, a read-only store) it is left unsaved, with
        a warning, and computed again next time."""
        try:
            with fileio.atomic_paths(self.directory / f"{name}.npy", self.directory / f"{name}.json") as (npy, sidecar):
                fileio.write_npy(npy, array)
                fileio.write_json(sidecar, {"fingerprint": self.fingerprint, **meta})
        except OSError as err:
            log.warning("cannot save %s (%s); it will be computed again", name, err)

    def load_array(self, name: str, **meta: object) -> np.ndarray | None:
        """A derived array saved by save_array, or None if absent, damaged or stale."""
        try:
            saved = fileio.load_json(self.directory / f"{name}.json")
            if saved != {"fingerprint": self.fingerprint, **json.loads(json.dumps(meta))}:
                return None
            array = fileio.load_npy(self.directory / f"{name}.npy")
            return array if len(array) == len(self) else None
        except (OSError, ValueError):
            return None


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def store_dir(root: str | os.PathLike | None, encoder: str) -> Path:
    """The store folder of `encoder` under `root` (None: config.features_root())."""
    return Path(root if root is not None else config.features_root()) / encoder


def store_encoders(root: str | os.PathLike) -> list[str]:
    """The encoders of the stores under `root`, sorted (empty when there is none)."""
    return sorted(p.parent.name for p in Path(root).glob(f"*/{FEATURES_FILE}"))


def open_store(root: str | os.PathLike | None = None, encoder: str | None = None) -> Store:
    """Load the store of `encoder` under `root` (or the only store there when encoder is None)."""
    root = Path(root if root is not None else config.features_root())
    if encoder is None:
        found = store_encoders(root)
        if len(found) != 1:
            raise StoreError(
                f"no feature store under {root}: run `vector-search index DATASET_DIR` first"
                if not found
                else f"several stores under {root} ({', '.join(found)}): choose one with --encoder"
            )
        encoder = found[0]
    return Store.load(store_dir(root, encoder))


# --- indexing a folder ---------------------------------------------------------------------------


@dataclass
class UpdateReport:
    """What an update did; `skipped` lists (path, reason) for files that could not be used."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    renamed: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path), reused
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def embedded(self) -> int:
        return len(self.added) + len(self.changed)


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a regular file's bytes; ImageError for a named pipe, device or folder (which
    would block or never end), OSError if it cannot be read."""
    with open_regular(path) as f:
        return fileio.sha256_of(f)


Progress = Callable[[int, int], None]  # (done, total)


def update_store(
    dataset: str | os.PathLike,
    root: str | os.PathLike | None = None,
    encoder_name: str | None = None,
    encoder: object | None = None,
    progress: Progress | None = None,
    batch_size: int = 32,
    checkpoint_seconds: float | None = None,
    rebuild: bool = False,
    embedder: Embedder | None = None,
) -> tuple[Store, UpdateReport]:
    """Bring the store of `encoder_name` in line with the images under `dataset`.

    `rebuild` re-embeds every image instead of reusing saved vectors.
    `encoder` (an `encoders.Encoder`) is created only if some file must be embedded, so an
    unchanged folder never loads a model. `embedder` replaces the local embedding step (it must
    yield vectors of `encoder_name`: see embedding.py). Progress is saved every `checkpoint_seconds`
    (default: $VECTOR_SEARCH_CHECKPOINT_SECONDS, else 20).
    """
    from .encoders import DEFAULT_ENCODER, get_encoder

    encoder_name = encoder_name or DEFAULT_ENCODER
    if encoder is not None and getattr(encoder, "name", encoder_name) != encoder_name:  # same shape, other space
        raise StoreError(f"the {encoder.name} encoder cannot write the {encoder_name} store: vectors of two encoders never mix")
    if checkpoint_seconds is None:
        checkpoint_seconds = config.checkpoint_seconds()
    report = UpdateReport()
    directory = store_dir(root, encoder_name)
    old = Store(directory, encoder_name, str(dataset), [], np.zeros((0, 0), np.float32))
    try:
        if not rebuild:
            old = Store.load(directory)
    except StoreError as err:
        if (directory / FEATURES_FILE).exists():
            report.notes.append(f"{err}; rebuilding it")
    fileio.remove_stale_temporaries(directory)  # left by an indexer that was killed mid-save
    kept, todo = _plan_update(dataset, old, report)

    def snapshot(done: list[tuple[Item, np.ndarray]]) -> Store:
        rows = sorted(kept + done, key=lambda pair: pair[0].path)
        vectors = np.stack([v for _, v in rows]).astype(np.float32) if rows else np.zeros((0, 0), np.float32)
        return Store(directory, encoder_name, str(dataset), [item for item, _ in rows], vectors)

    done: list[tuple[Item, np.ndarray]] = []
    if todo:
        checkpoint = _Checkpoint(checkpoint_seconds, lambda: snapshot(done).save(complete=False))
        embedder = embedder or local_embedder(encoder or get_encoder(encoder_name), batch_size)
        _embed_into(done, dataset, todo, embedder, report, progress, checkpoint)
    store = snapshot(done)
    if store.items != old.items or store.dataset != old.dataset or not (directory / FEATURES_FILE).exists():
        store.save()
    else:
        store.stamp = old.stamp
    return store, report


def _plan_update(dataset: str | os.PathLike, old: Store, report: UpdateReport) -> tuple[list[tuple[Item, np.ndarray]], list[Item]]:
    """Which images keep their saved vector (unchanged, touched, renamed or copied: same content)
    and which must be embedded; counts each in `report`, with the files that are gone or unreadable."""
    rel_paths, problems = find_images(dataset)
    report.skipped.extend(problems)
    by_path = old._by_path
    by_hash = {item.sha256: i for i, item in enumerate(old.items)}  # the last copy wins: a rename is reported
    kept: list[tuple[Item, np.ndarray]] = []
    todo: list[Item] = []
    for rel in rel_paths:
        full = os.path.join(dataset, rel)
        try:
            st = os.stat(full)
            j = by_path.get(rel)
            if j is not None and old.items[j].matches(st):
                kept.append((old.items[j], old.vectors[j]))
                report.unchanged += 1
                continue
            item = Item(rel, st.st_size, st.st_mtime_ns, file_sha256(full))
        except OSError as err:
            report.skipped.append((rel, f"cannot read file: {err.strerror or err}"))
            continue
        except ImageError as err:  # a named pipe or a device: never opened for reading
            report.skipped.append((rel, str(err)))
            continue
        if item.sha256 in by_hash:  # touched, copied or renamed: same content, same vector
            j = by_hash[item.sha256]
            kept.append((item, old.vectors[j]))
            if old.items[j].path == rel:
                report.unchanged += 1
            else:
                report.renamed.append((old.items[j].path, rel))
        else:
            todo.append(item)
            (report.changed if rel in by_path else report.added).append(rel)
    present = set(rel_paths)
    renamed_from = {a for a, _ in report.renamed}
    report.removed = [i.path for i in old.items if i.path not in present and i.path not in renamed_from]
    return kept, todo


@dataclass
class _Checkpoint:
    """Calls `save` when `seconds` have passed since the last save."""

    seconds: float
    save: Callable[[], None]
    last: float = field(default_factory=time.monotonic)

    def tick(self) -> None:
        if time.monotonic() - self.last > self.seconds:
            self.save()
            self.last = time.monotonic()


def _embed_into(
    done: list[tuple[Item, np.ndarray]],
    dataset: str | os.PathLike,
    todo: list[Item],
    embedder: Embedder,
    report: UpdateReport,
    progress: Progress | None,
    checkpoint: _Checkpoint,
) -> None:
    """Embed `todo`, appending (item, vector) to `done` as batches come (checkpoints save it);
    files that fail to decode are skipped and no longer counted as added or changed."""
    failed: set[str] = set()
    for batch in embedder([os.path.join(dataset, t.path) for t in todo]):
        for i, reason in batch.errors:
            report.skipped.append((todo[i].path, reason))
            failed.add(todo[i].path)
        if batch.vectors is not None:
            done.extend((todo[i], batch.vectors[row]) for row, i in enumerate(batch.indices))
        if progress:
            progress(len(done) + len(failed), len(todo))
        checkpoint.tick()
    report.added = [p for p in report.added if p not in failed]
    report.changed = [p for p in report.changed if p not in failed]
