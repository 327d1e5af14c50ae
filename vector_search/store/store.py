"""The feature store: image vectors on disk, keyed by file, growing by appends (format 2), one store per
encoder in `<features_root>/<encoder>/`:

    store.json               the manifest, replaced atomically: the commit point of every write
    vectors-<g>.f32          the rows of generation g, raw float32, append-only; readers map them
    items-<g>-<c>.parquet    the items (relative path, size, mtime, sha256) of the rows one commit appended
    deleted-<g>-<c>.npy      the rows marked deleted (sorted int64), if any
    <name>.npy/.json         derived arrays (indexes, joint vectors) saved with the fingerprint they were made from

A write adds rows at the end of the vector file and an item table, then commits a new manifest naming them; a file is
never changed once a manifest names it (the vector file only grows past the committed rows). Opening a store maps it and
reads nothing else row by row, so a million photos open in well under a second. `generation` changes only when rows are
rewritten (compaction, a rebuild: the app's "Regenerate", migration of a format-1 `features.npz`): within a generation
rows are only appended or marked deleted, so a derived index over rows [0, m) stays valid. Updates: updates.py.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vector_search import fileio
from vector_search.imaging.images import class_of
from vector_search.store import derived, locks
from vector_search.store import files as storefiles
from vector_search.store.files import ITEM_SCHEMA, LEGACY_FILE, MANIFEST_FILE, Item, Manifest, StoreError, remove_unnamed
from vector_search.store.migration import read_legacy

log = logging.getLogger(__name__)


class Store:
    """Vectors of the images of one dataset folder, made by one encoder.

    `Store(directory, encoder, dataset, items, vectors)` is a store in memory; `save()` writes it.
    A loaded store maps its vector file: `vectors` is read-only and row i is file row i, deleted
    rows included (`live` masks them), so derived arrays keep the rows aligned. Item columns are
    read when first asked for; `items`, `paths` and `classes` build Python lists of all rows."""

    def __init__(self, directory: str | os.PathLike, encoder: str, dataset: str, items: Sequence[Item] = (), vectors: np.ndarray | None = None) -> None:
        self.directory = Path(directory)
        self.manifest = Manifest(encoder, dataset)  # not committed until save() (stamp None)
        self.stamp: tuple[int, int, int] | None = None  # (inode, size, mtime) of the manifest loaded
        self.saved = False  # whether this is a committed format-2 store (not one in memory, nor a format-1 file)
        self.vectors = vectors if vectors is not None else np.zeros((0, 0), np.float32)
        self.items = list(items)
        self.deleted_rows = np.zeros(0, np.int64)  # sorted
        self._tables: list = []  # pyarrow ParquetFiles of a loaded store, read on first use
        # One read of the tables at a time: two threads reading one ParquetFile at once crashed the
        # process (a segfault in pyarrow, seen with 8 threads of first queries on one engine).
        self._read_lock = threading.Lock()

    # --- what it holds -------------------------------------------------------------------------

    @property
    def encoder(self) -> str:
        return self.manifest.encoder

    @property
    def dataset(self) -> str:
        return self.manifest.dataset

    @property
    def generation(self) -> int:
        return self.manifest.generation

    @property
    def index_kind(self) -> str | None:
        """The index kind named in the store's metadata (None: chosen by size)."""
        return self.manifest.index_kind

    def __len__(self) -> int:
        return len(self.vectors)

    @functools.cached_property
    def live(self) -> np.ndarray | None:
        """Which rows are live (bool, one per row), or None when no row is deleted."""
        if not len(self.deleted_rows):
            return None
        mask = np.ones(len(self), bool)
        mask[self.deleted_rows] = False
        return mask

    def _forget_derived(self) -> None:  # what was computed from the rows (kept in __dict__ on first use)
        for cached in ("table", "columns", "path_groups", "items", "paths", "classes", "fingerprint", "live"):
            self.__dict__.pop(cached, None)

    def is_live(self, i: int) -> bool:
        return self.live is None or bool(self.live[i])

    @property
    def table(self) -> pa.Table:
        """The item columns (path, size, mtime_ns, sha256), one row per vector row."""
        if "table" not in self.__dict__:
            self.__dict__["table"] = pa.Table.from_arrays([self.column(name) for name in ITEM_SCHEMA.names], schema=ITEM_SCHEMA) \
                if self._tables else storefiles.table_of(self.__dict__.get("items", []))
        return self.__dict__["table"]

    def column(self, name: str) -> pa.ChunkedArray:
        """One item column of every row (path as bytes, size, mtime_ns, sha256), read on first use."""
        columns = self.__dict__.setdefault("columns", {})
        if name not in columns:
            kind = ITEM_SCHEMA.field(name).type
            # (chunks, not the tables' ChunkedArrays: pyarrow imports pandas, 0.5-1 s, to look at a list of those)
            columns[name] = pa.chunked_array([chunk for i, t in enumerate(self._tables) for chunk in (
                self._read(i, name) if name in t.schema_arrow.names else [pa.nulls(t.metadata.num_rows, kind)])], kind) \
                if self._tables else self.table.column(name)
        return columns[name]

    def _read(self, i: int, column: str) -> list[pa.Array]:
        """One column of item table i, as its chunks; StoreError naming the file (and what to run) if it is damaged."""
        try:
            with self._read_lock:
                return self._tables[i].read(columns=[column]).column(0).chunks
        except (OSError, pa.ArrowException) as err:
            raise StoreError(f"{self.directory / self.manifest.tables[i][0]} is damaged ({err}): run "
                             f"`vector-search index {self.dataset}` to rebuild the store") from None

    @property
    def items(self) -> list[Item]:
        if "items" not in self.__dict__:
            columns = [storefiles.decode_paths(self.column("path"))] + [self.column(c).to_pylist() for c in ITEM_SCHEMA.names[1:]]
            self.__dict__["items"] = [Item(*row) for row in zip(*columns)]
        return self.__dict__["items"]

    @items.setter
    def items(self, items: list[Item]) -> None:
        """Replace the items of a store in memory (save() writes them)."""
        self._forget_derived()
        self.__dict__["items"] = items  # the table is made from them when asked for
        self._tables, self.deleted_rows, self.saved = [], np.zeros(0, np.int64), False
        self.manifest = replace(self.manifest, fingerprint="", rows=len(items), tables=(), deleted=None, deleted_crc32="")

    def item(self, i: int) -> Item:
        """Row i's item, without building all of them."""
        if "items" in self.__dict__:
            return self.items[i]
        return Item(self._rel(i), *(self.column(c)[i].as_py() for c in ITEM_SCHEMA.names[1:]))

    def rows_without_metadata(self) -> np.ndarray:
        """Live rows whose photo metadata was never read (indexed before the metadata columns, or
        converted from format 1): every indexed photo decoded, so it has a width once read."""
        nulls = pc.is_null(self.column("width")).combine_chunks()  # (to_pylist: pyarrow's to_numpy imports pandas, 0.5-1 s)
        unread = np.asarray(pc.indices_nonzero(nulls).to_pylist(), np.int64)
        return unread if self.live is None else unread[self.live[unread]]

    def _rel(self, i: int) -> str:  # (the whole column if read, else row i's row group: storefiles.path_of)
        whole = self.__dict__.get("columns", {}).get("path") if self._tables else self.column("path")
        try:
            if whole is not None:
                path = whole[i]
            else:
                with self._read_lock:
                    path = storefiles.path_of(self._tables, i, self.__dict__.setdefault("path_groups", {}))
        except (OSError, pa.ArrowException) as err:
            raise StoreError(f"an item table of {self.directory} is damaged ({err}): run `vector-search index {self.dataset}`") from None
        return path.as_py().decode("utf-8", "surrogateescape")

    def path(self, i: int) -> str:
        """Row i's path as indexed (the dataset folder joined with its relative path)."""
        return os.path.join(self.dataset, self._rel(i))

    @functools.cached_property
    def paths(self) -> list[str]:
        """Item paths as indexed: the dataset folder joined with each relative path."""
        return [os.path.join(self.dataset, path) for path in storefiles.decode_paths(self.column("path"))]

    @functools.cached_property
    def classes(self) -> list[str]:
        return [class_of(path) for path in storefiles.decode_paths(self.column("path"))]

    @property
    def fingerprint(self) -> str:
        """Changes whenever the rows change (kept in the manifest: O(1) to open); derived files record it."""
        if self.manifest.fingerprint:
            return self.manifest.fingerprint
        if "fingerprint" not in self.__dict__:  # a store in memory: what save() would record
            self.__dict__["fingerprint"] = storefiles.fingerprint(storefiles.empty_fingerprint(self.encoder), "+", self.vectors.shape[1], self.table)
        return self.__dict__["fingerprint"]

    def find(self, path: str | os.PathLike) -> int | None:
        """Row of the live item of a file given any path to it, or None."""
        rel = os.path.relpath(os.path.realpath(path), os.path.realpath(self.dataset))
        rows = self._live_rows_where("path", storefiles.encode_path(rel))
        return int(rows[-1]) if len(rows) else None

    def find_content(self, sha256: str) -> int | None:
        """Row of a live item with this content hash (the first), or None."""
        rows = self._live_rows_where("sha256", sha256)
        return int(rows[0]) if len(rows) else None

    def _live_rows_where(self, column: str, value: str | bytes) -> np.ndarray:
        rows = storefiles.rows_equal(self.column(column), value)
        return rows if self.live is None else rows[self.live[rows]]

    # --- reading -------------------------------------------------------------------------------

    def changed_on_disk(self) -> bool:
        """Whether another process has committed this store, complete, since it was loaded (every
        commit replaces the manifest, so its inode changes): a long-lived reader then opens it again.
        Checkpoints of a run still indexing do not count: readers keep the last complete state."""
        try:
            manifest = self.directory / MANIFEST_FILE
            if self.stamp is None or _stamp(os.stat(manifest)) == self.stamp:
                return False
            return Manifest.read(manifest)[0].complete
        except Exception:  # deleted, or being replaced: keep answering from what is loaded
            return False

    @classmethod
    def load(cls, directory: str | os.PathLike, convert: bool = True, checkpoint: bool = False) -> "Store":
        """Open a saved store as last committed complete; StoreError if it is missing, damaged or from another
        version. `checkpoint` (a writer resuming a stopped run): the last checkpoint of a run, if that came after.

        A format-1 `features.npz` is converted once (`convert`), or read in memory when it cannot
        be (a read-only folder, a writer busy)."""
        directory = Path(directory)
        for attempt in (1, 2):  # (FileNotFoundError: a writer removed a file of the manifest just read: read the new one)
            try:
                return cls._open(directory, convert, checkpoint)
            except FileNotFoundError as err:
                if attempt == 1:
                    continue
                raise StoreError(f"feature store {directory} is damaged (missing {Path(err.filename or '?').name}): "
                                 "run `vector-search index DATASET_DIR` to rebuild it") from None

    @classmethod
    def _open(cls, directory: Path, convert: bool, checkpoint: bool) -> "Store":
        file = directory / MANIFEST_FILE
        if not file.exists():
            if (directory / LEGACY_FILE).exists():
                return cls._open_legacy(directory, convert)
            raise StoreError(f"no feature store at {directory}: run `vector-search index DATASET_DIR` first")
        try:
            manifest, stamp = Manifest.read(file)
        except ValueError as err:
            raise StoreError(f"{err}: run `vector-search index DATASET_DIR` to rebuild it") from None
        if not (manifest.complete or checkpoint):  # a run still indexing (or stopped): its last complete state
            if manifest.previous is None:
                raise StoreError(f"the feature store {directory} has no complete save yet: wait for `vector-search index "
                                 f"{manifest.dataset}` to finish, or run it again if it was stopped")
            manifest = manifest.previous
        store = cls(directory, manifest.encoder, manifest.dataset)
        try:
            store._attach(manifest, stamp, verify=not checkpoint)
        except FileNotFoundError:
            raise
        except Exception as err:  # a short vector file, a damaged table...
            raise StoreError(f"feature store {directory} is damaged ({type(err).__name__}: {err}): "
                             f"run `vector-search index {manifest.dataset}` to rebuild it") from None
        return store

    @classmethod
    def _open_legacy(cls, directory: Path, convert: bool) -> "Store":
        """A format-1 store, converted to format 2 (`convert`) unless it cannot be written now (then read in memory)."""
        try:
            old = read_legacy(directory)
        except ValueError as err:
            raise StoreError(str(err)) from None
        legacy = cls(directory, old.encoder, old.dataset, [Item(*row) for row in old.rows], old.vectors)
        legacy.stamp = old.stamp
        if not convert:
            return legacy
        try:
            with locks.writer_lock(directory, f"the feature store {directory}", wait=False):
                if not (directory / MANIFEST_FILE).exists():  # else another process converted it meanwhile
                    legacy.save()
                    log.warning(f"converted the feature store {directory} to format 2 ({len(legacy)} rows, same vectors); "
                                f"{LEGACY_FILE} is removed")
                return cls.load(directory, convert=False)
        except (OSError, locks.LockBusyError) as err:
            log.warning(f"the feature store {directory} has the old format ({LEGACY_FILE}) and cannot be converted now ({err}): "
                        "it is read whole into memory until it is")
            return legacy

    def _attach(self, manifest: Manifest, stamp: tuple[int, int, int], verify: bool = False) -> None:
        """Become the committed store `manifest` describes: map its vectors (`verify`: a reader checks their checksums), open its tables."""
        directory = self.directory
        vectors = storefiles.map_vectors(directory / manifest.vectors, manifest.rows, manifest.dim)
        if verify and vectors.nbytes <= storefiles.VERIFY_AT_OPEN_BYTES:  # (bigger ones: by every `index`)
            storefiles.check_vectors(directory / manifest.vectors, vectors, manifest.checksums)
        tables = [storefiles.open_table(directory / name, rows) for name, rows in manifest.tables]
        deleted = (storefiles.load_deleted(directory / manifest.deleted, manifest.rows, manifest.deleted_crc32) if manifest.deleted
                   else np.zeros(0, np.int64))
        self._forget_derived()
        self.manifest, self.stamp, self.vectors, self._tables, self.deleted_rows = manifest, stamp, vectors, tables, deleted
        self.saved = True

    # --- writing (writers hold the store's lock: see locks.py) ---------------------------------

    def append(
        self,
        items: Sequence[Item] | pa.Table,
        vectors: np.ndarray,
        deleted: Sequence[int] | np.ndarray = (),
        keep: np.ndarray | None = None,
        **changes: object,
    ) -> "Store":
        """Commit rows after the last one (those of `vectors` where `keep`, if given) and mark
        `deleted` rows; returns the committed store (this one is left as it was, still valid).
        `changes`: manifest fields to set (complete, dataset, index_kind).

        The rows go to the end of the vector file (fsynced), their items to a new table, then one
        new manifest names both: killed at any moment, the last manifest still describes a whole store."""
        m = self.manifest
        table = items if isinstance(items, pa.Table) else storefiles.table_of(items)
        dim = vectors.shape[1] if len(vectors) else m.dim
        deleted = np.asarray(deleted, np.int64)
        if (m.rows and not self.saved) or (m.rows and dim != m.dim) or (len(deleted) and not 0 <= deleted.min() <= deleted.max() < m.rows):
            raise ValueError(f"cannot append {dim}-d rows deleting {deleted[:5]}... to {'a saved' if self.saved else 'an unsaved'} store of {m.rows} x {m.dim}")
        if self.saved and _stamp(os.stat(self.directory / MANIFEST_FILE)) != self.stamp:  # would cut rows it never saw
            raise StoreError(f"the store {self.directory} changed since it was loaded (another writer): load it again")
        commit = m.commit + 1
        self.directory.mkdir(parents=True, exist_ok=True)
        added, crc = storefiles.append_vectors(self.directory / m.vectors, m.rows, dim, vectors, keep) if len(vectors) else (0, "")
        if added != table.num_rows:
            raise ValueError(f"{added} vectors for {table.num_rows} items")
        tables, fingerprint = m.tables, m.fingerprint
        if added:
            name = storefiles.table_name(m.generation, commit)
            storefiles.write_table(self.directory / name, table)
            tables, fingerprint = (*tables, (name, added)), storefiles.fingerprint(fingerprint, "+", dim, table)
            changes["checksums"] = (*m.checksums, (added, crc))
        now_deleted, deleted_file = self.deleted_rows, m.deleted
        new = np.setdiff1d(deleted, self.deleted_rows)
        if len(new):
            now_deleted = np.union1d(self.deleted_rows, new)
            deleted_file = storefiles.deleted_name(m.generation, commit)
            fileio.save_npy(self.directory / deleted_file, now_deleted)
            changes["deleted_crc32"] = fileio.checksum(self.directory / deleted_file)
            fingerprint = storefiles.fingerprint(fingerprint, "-", dim, deleted=new)
        manifest = replace(m, dim=dim, rows=m.rows + added, tables=tables, deleted=deleted_file, fingerprint=fingerprint, commit=commit, **changes)
        return self._commit(manifest)

    def _commit(self, manifest: Manifest) -> "Store":
        """Write `manifest` (the commit point), remove the files it no longer names, return its store."""
        file = self.directory / MANIFEST_FILE
        manifest = replace(manifest, previous=None if manifest.complete else Manifest.last_complete(file))
        fileio.save_json(file, manifest.as_dict())
        committed = Store(self.directory, manifest.encoder, manifest.dataset)
        committed._attach(manifest, _stamp(os.stat(file)))
        remove_unnamed(self.directory, manifest)
        return committed

    def compacted(self, complete: bool = True) -> "Store":
        """This store's live rows as a new generation in one table (a writer calls it when deleted
        rows pile up, or at the end of every update of a small store): readers holding this one
        keep their map of the old file, which is removed from the folder only."""
        live = self.live
        table = self.table if live is None else self.table.filter(pa.array(live))
        return Store.next_generation(self.directory, self.manifest).append(table, self.vectors, keep=live, complete=complete)

    def with_tables_merged(self, table: pa.Table | None = None) -> "Store":
        """The same rows with their item tables merged into one (one per checkpoint piles up on a
        big store), or replaced by `table` (the same paths and hashes, other metadata): the
        generation, the vectors and the fingerprint stay."""
        m = self.manifest
        name = storefiles.table_name(m.generation, m.commit + 1)
        storefiles.write_table(self.directory / name, self.table if table is None else table)
        return self._commit(replace(m, tables=((name, m.rows),), commit=m.commit + 1))

    @classmethod
    def next_generation(cls, directory: Path, like: Manifest) -> "Store":
        """An empty store of a new generation, numbered past every file in `directory` and the
        manifest there (nothing written yet): its first append commits it. The index kind the
        manifest there records is kept unless `like` names one (a rebuild keeps `--index`)."""
        try:
            last, _ = Manifest.read(directory / MANIFEST_FILE)
        except (OSError, ValueError):
            last = Manifest(like.encoder, like.dataset, generation=-1)
        generation = max(last.generation, storefiles.highest_generation(directory)) + 1
        store = cls(directory, like.encoder, like.dataset)
        store.manifest = replace(like, dim=0, rows=0, tables=(), deleted=None, deleted_crc32="", generation=generation,
                                 commit=max(last.commit, like.commit),
                                 fingerprint=storefiles.empty_fingerprint(like.encoder), index_kind=like.index_kind or last.index_kind, checksums=())
        return store

    def save(self, complete: bool = True) -> None:
        """Write this whole store (its live rows) as a fresh generation, and become that saved store.
        `complete=False` marks a checkpoint of a run still indexing (see changed_on_disk)."""
        committed = self.compacted(complete)
        self._attach(committed.manifest, committed.stamp)

    # --- derived arrays (derived.py) ----------------------------------------------------------

    def save_array(self, name: str, array: np.ndarray, rows: bool = False, **meta: object) -> None:
        """Save a derived array (e.g. joint vectors) tagged with this store's fingerprint, or with its
        generation when `rows` (row-aligned, valid for the first rows of every later store of it)."""
        derived.save_array(self.directory, name, array, self._array_key(rows), **meta)

    def load_array(self, name: str, mmap: bool = False, rows: bool = False, verify: bool = False, **meta: object) -> np.ndarray | None:
        """A derived array saved by save_array (memory-mapped with `mmap`), or None if absent, stale or damaged
        (`verify`: its checksum read even if big, derived.load_array)."""
        return derived.load_array(self.directory, name, self._array_key(rows), len(self), mmap, fewer=rows, verify=verify, **meta)

    def _array_key(self, rows: bool) -> dict[str, object]:
        return {"generation": self.generation} if rows else {"fingerprint": self.fingerprint}


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)

