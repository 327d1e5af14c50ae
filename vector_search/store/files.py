"""The files of a feature store (format 2), read and written one by one; store.py composes them.

Every file but the vector file is written whole and atomically (fileio) under a name never used
before in its generation, so a file a manifest names never changes. The vector file only grows:
bytes of committed rows are never written again, so a reader's memory map stays valid.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from vector_search import fileio
from vector_search.errors import VectorSearchError

FORMAT_VERSION = 2
MANIFEST_FILE = "store.json"
LEGACY_FILE = "features.npz"  # format 1: one npz, rewritten whole at every save; converted on first open (migration.py)
FLOAT32 = np.dtype("<f4")
CHUNK_BYTES = 64 << 20  # vectors are copied in blocks of this size: a 5 GB compaction never holds 5 GB
# Stores with up to this many bytes of vectors (50k photos at 1280-d) have them checked against their
# checksums at every open (once per process; 265 MiB/s at load 17: bench/bench_verify.py); bigger ones at every `index` (updates.py).
VERIFY_AT_OPEN_BYTES = 256 << 20
# Paths are bytes (UTF-8, undecodable names kept by surrogateescape, as os.fsencode does): a file
# name need not be valid UTF-8, and Arrow strings must be.
# What identifies a file's content, then what a photo says of itself (store/metadata.py; null when
# unknown): the date taken (EXIF, seconds since 1970 read as UTC), the camera ("Make Model") and the
# size as displayed. Tables written before the metadata columns (LEGACY_ITEM_SCHEMA) still open:
# their rows read as null, and the next `index` fills them in (updates.py).
LEGACY_ITEM_SCHEMA = pa.schema([("path", pa.binary()), ("size", pa.int64()), ("mtime_ns", pa.int64()), ("sha256", pa.string())])
METADATA_FIELDS = [("taken", pa.int64()), ("camera", pa.string()), ("width", pa.int32()), ("height", pa.int32())]
ITEM_SCHEMA = pa.schema([*LEGACY_ITEM_SCHEMA, *METADATA_FIELDS])
FILE_PATTERN = re.compile(r"(vectors-(\d+)\.f32|items-\d+-\d+\.parquet|deleted-\d+-\d+\.npy)")
TEMPORARY_PATTERN = re.compile(r"\.(store\.json|items-\d+-\d+\.parquet|deleted-\d+-\d+\.npy)\..+\.tmp")  # (fileio.atomic_paths)


class StoreError(VectorSearchError, RuntimeError):
    """A store that is missing, unreadable or was written by another version."""


@dataclass(frozen=True)
class Item:
    """One indexed file: its path relative to the dataset folder and what identifies its content."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    taken: int | None = None  # what the photo says of itself (metadata.PhotoInfo), None when unknown
    camera: str | None = None
    width: int | None = None
    height: int | None = None

    def matches(self, st: os.stat_result) -> bool:
        """Whether a file's stat still says it is this item (same size and mtime): no need to hash it."""
        return (self.size, self.mtime_ns) == (st.st_size, st.st_mtime_ns)


def vectors_name(generation: int) -> str:
    return f"vectors-{generation}.f32"


def table_name(generation: int, commit: int) -> str:
    return f"items-{generation}-{commit}.parquet"


def deleted_name(generation: int, commit: int) -> str:
    return f"deleted-{generation}-{commit}.npy"


def store_files(directory: Path) -> list[str]:
    """Names of the vector, item and deleted-row files in `directory` (named by a manifest or not)."""
    try:
        return sorted(name for name in os.listdir(directory) if FILE_PATTERN.fullmatch(name))
    except FileNotFoundError:
        return []


def highest_generation(directory: Path) -> int:
    """The highest generation of a vector file in `directory`, -1 if none: a new generation goes
    past it, so no file a reader may have mapped is ever written in place."""
    found = (FILE_PATTERN.fullmatch(name) for name in store_files(directory))
    return max((int(m.group(2)) for m in found if m and m.group(2)), default=-1)


@dataclass(frozen=True)
class Manifest:
    """What `store.json` says: the committed state of a store."""

    encoder: str
    dataset: str  # the dataset folder as it was given when indexing
    dim: int = 0
    generation: int = 0
    rows: int = 0
    tables: tuple[tuple[str, int], ...] = ()  # (item table file, rows), in row order
    deleted: str | None = None  # the deleted-rows file, if any row is deleted
    complete: bool = True  # False: a checkpoint of a run still indexing
    fingerprint: str = ""
    index_kind: str | None = None
    commit: int = 0  # counts commits: names new files so that none is ever reused
    version: int = FORMAT_VERSION
    previous: Manifest | None = None  # in a checkpoint: the last complete state, what readers read
    checksums: tuple[tuple[int, str], ...] = ()  # (rows, CRC-32 of their bytes) per append, in row order
    deleted_crc32: str = ""  # of the deleted-rows file (a changed id would hide a photo and show a deleted one)

    @property
    def vectors(self) -> str:
        return vectors_name(self.generation)

    def names(self) -> set[str]:
        """The files this manifest (and the complete state a checkpoint keeps) names: none may go."""
        mine = {self.vectors, *(name for name, _ in self.tables), *([self.deleted] if self.deleted else [])}
        return mine | (self.previous.names() if self.previous else set())

    def as_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "previous" and (k != "deleted_crc32" or v)}  # (as older versions wrote it)
        return data if self.previous is None else {**data, "previous": self.previous.as_dict()}

    @classmethod
    def of(cls, data: dict) -> Manifest:
        previous = data.get("previous")
        pairs = {key: tuple((type(a)(n), type(b)(r)) for n, r in data.get(key, ())) for key, (a, b) in (("tables", ("", 0)), ("checksums", (0, "")))}
        return cls(**{**data, **pairs, "previous": previous and cls.of(previous)})

    @classmethod
    def read(cls, file: Path) -> tuple["Manifest", tuple[int, int, int]]:
        """The manifest in `file` and the stamp (inode, size, mtime) of the very file read;
        ValueError (saying what is wrong) if damaged or of another format."""
        try:
            with open(file, "rb") as f:
                st = os.fstat(f.fileno())
                stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
                data = json.loads(f.read())
        except FileNotFoundError:
            raise
        except (OSError, ValueError) as err:
            raise ValueError(f"feature store {file} is damaged ({type(err).__name__}: {err})") from None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            found = data.get("version") if isinstance(data, dict) else None
            raise ValueError(f"feature store {file} has format {found}, expected {FORMAT_VERSION}")
        try:
            manifest = cls.of(data)
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise ValueError(f"feature store {file} is damaged ({type(err).__name__}: {err})") from None
        if sum(r for _, r in manifest.tables) != manifest.rows or not all(FILE_PATTERN.fullmatch(name) for name in manifest.names()) \
                or (manifest.checksums and sum(r for r, _ in manifest.checksums) != manifest.rows):
            raise ValueError(f"feature store {file} is inconsistent")
        return manifest, stamp

    @classmethod
    def last_complete(cls, file: Path) -> Manifest | None:
        """The last complete state committed in `file` (what a checkpoint keeps for readers), if any."""
        try:
            manifest, _ = cls.read(file)
        except (OSError, ValueError):
            return None
        return manifest if manifest.complete else manifest.previous


def remove_unnamed(directory: Path, manifest: Manifest) -> None:
    """Remove the store files `manifest` does not name (older generations, what a killed writer
    left, a converted features.npz) and the temporaries of store files a killed writer left (the
    caller is the writer: it holds the store's lock). Readers that mapped or opened them keep reading them."""
    temporaries = [p.name for p in directory.glob(".*.tmp") if TEMPORARY_PATTERN.fullmatch(p.name)]
    for name in [*store_files(directory), LEGACY_FILE, *temporaries]:
        if name not in manifest.names():
            try:
                (directory / name).unlink(missing_ok=True)
            except OSError:
                pass


# --- vectors ---------------------------------------------------------------------------------------


def map_vectors(path: Path, rows: int, dim: int) -> np.ndarray:
    """The first `rows` rows of a vector file, memory-mapped read-only (bytes past them are ignored)."""
    if rows == 0:
        return np.zeros((0, dim), np.float32)
    size = os.path.getsize(path)
    if size < rows * dim * FLOAT32.itemsize:
        raise ValueError(f"{path.name} holds {size} bytes, fewer than its {rows} rows of {dim}")
    return np.memmap(path, FLOAT32, mode="r", shape=(rows, dim))


def damaged_rows(vectors: np.ndarray, checksums: Sequence[tuple[int, str]], path: Path | None = None) -> np.ndarray:
    """Which rows are damaged (bool): not finite, or in a range whose bytes differ from the checksum
    saved when it was appended (`checksums`, if they cover every row). One pass, in blocks. A range
    checked once in this process (or written by it) is not read again for its checksum."""
    bad = ~finite_rows(vectors)
    if sum(r for r, _ in checksums) != len(vectors) or path is None:
        return bad  # (a store saved before checksums: finiteness only, until its next compaction)
    start = 0
    for rows, crc in checksums:
        key = (str(path), start, rows, crc)
        if key not in _CHECKED_RANGES:
            found = 0
            for first in range(start, start + rows, _block(vectors)):
                found = zlib.crc32(np.ascontiguousarray(vectors[first : min(first + _block(vectors), start + rows)], FLOAT32).data, found)
            if f"{found:08x}" == crc:
                _CHECKED_RANGES.add(key)
            else:
                bad[start : start + rows] = True
        start += rows
    return bad


def check_vectors(path: Path, vectors: np.ndarray, checksums: Sequence[tuple[int, str]]) -> None:
    """ValueError naming the rows of `path` whose bytes differ from their checksum (or are not finite)."""
    bad = np.flatnonzero(damaged_rows(vectors, checksums, path))
    if len(bad):
        raise ValueError(f"{path.name} is damaged: {len(bad)} rows (from row {bad[0]}) differ from their checksum")


_CHECKED_RANGES: set[tuple[str, int, int, str]] = set()


def _block(vectors: np.ndarray) -> int:
    return max(1, CHUNK_BYTES // max(1, vectors[0].nbytes if len(vectors) else 1))


def finite_rows(vectors: np.ndarray) -> np.ndarray:
    """Which rows hold only finite values (bool), read in blocks (a memory-mapped store stays on disk).
    A row that is not (flipped bytes, a broken encoder) is never searched and is embedded again."""
    step = max(1, CHUNK_BYTES // max(1, vectors.shape[1] * FLOAT32.itemsize)) if vectors.ndim == 2 else len(vectors) or 1
    return np.concatenate([np.isfinite(vectors[i : i + step]).reshape(len(vectors[i : i + step]), -1).all(axis=1)
                           for i in range(0, len(vectors), step)] or [np.zeros(0, bool)])


def append_vectors(path: Path, rows: int, dim: int, vectors: np.ndarray, keep: np.ndarray | None = None) -> tuple[int, str]:
    """Write `vectors` (only rows where `keep`) after the first `rows` rows of `path`, fsynced;
    returns how many were written and their checksum. What a killed writer left past `rows` is cut
    first; a row that is not finite is refused (ValueError) and nothing is written."""
    written, crc = 0, 0
    step = max(1, CHUNK_BYTES // max(1, dim * FLOAT32.itemsize))
    with fileio.appending(path, rows * dim * FLOAT32.itemsize) as write:
        for start in range(0, len(vectors), step):
            block = np.asarray(vectors[start : start + step])
            if keep is not None:
                block = block[keep[start : start + step]]
            block = np.ascontiguousarray(block, dtype=FLOAT32)
            if not np.isfinite(block).all():
                raise ValueError(f"refusing to write vectors that are not finite to {path.name}")
            write(block.data)
            written, crc = written + len(block), zlib.crc32(block.data, crc)
    _CHECKED_RANGES.add((str(path), rows, written, f"{crc:08x}"))  # (what this process wrote, it knows)
    return written, f"{crc:08x}"


# --- items -----------------------------------------------------------------------------------------


def items_table(paths: Sequence[str], *columns: Sequence) -> pa.Table:
    """The item table of `paths` and the other ITEM_SCHEMA columns in order (size, mtime_ns, sha256,
    then the metadata, which may be left out: null)."""
    arrays = [pa.array([encode_path(p) for p in paths], pa.binary())]
    arrays += [pa.array(values, field.type) for values, field in zip(columns, list(ITEM_SCHEMA)[1:])]
    arrays += [pa.nulls(len(paths), field.type) for field in list(ITEM_SCHEMA)[len(arrays):]]
    return pa.Table.from_arrays(arrays, schema=ITEM_SCHEMA)


def table_of(items: Sequence) -> pa.Table:
    """The table of store.Items (anything with an attribute per ITEM_SCHEMA column)."""
    if not items:  # (pa.array on a Python list imports pandas: 1 s and 40 MiB that opening a store never needs)
        return ITEM_SCHEMA.empty_table()
    return items_table(*zip(*(tuple(getattr(i, name) for name in ITEM_SCHEMA.names) for i in items)))


def encode_path(path: str) -> bytes:
    return path.encode("utf-8", "surrogateescape")


def decode_paths(column: pa.ChunkedArray | pa.Array) -> list[str]:
    return [raw.decode("utf-8", "surrogateescape") for raw in column.to_pylist()]


def scalar(value: str | bytes, type: pa.DataType) -> pa.Scalar:
    """An Arrow scalar made from its bytes: pa.scalar on a Python value imports pandas (1 s, 40 MiB)."""
    raw = value if isinstance(value, bytes) else value.encode("utf-8")
    offsets = np.array([0, len(raw)], np.int32).tobytes()
    return pa.Array.from_buffers(type, 1, [None, pa.py_buffer(offsets), pa.py_buffer(raw)])[0]


def rows_equal(column: pa.ChunkedArray, value: str | bytes) -> np.ndarray:
    """Rows where `column` equals `value` (int64), found by Arrow: one pass in C, no Python objects."""
    found = pc.indices_nonzero(pc.equal(column, scalar(value, column.type)).combine_chunks())
    return np.frombuffer(found.buffers()[1], np.uint64, len(found), found.offset * 8).astype(np.int64)  # (to_numpy imports pandas)


ROW_GROUP = 65_536  # item rows per Parquet row group: the path of one row is read with its group only (path_of)


def write_table(path: Path, table: pa.Table) -> None:
    with fileio.atomic_path(path) as tmp:
        pq.write_table(table, tmp, write_page_checksum=True, row_group_size=ROW_GROUP)  # read back verified (open_table)


def path_of(tables: list[pq.ParquetFile], i: int, groups: dict[tuple[int, int], pa.Array]) -> pa.Scalar:
    """Row i's path from its row group only (ROW_GROUP rows; `groups` caches the groups read), so the
    few answers of a query never read the path column of a 1M-row store (4 s). Tables written before
    ROW_GROUP have one group: the whole column, as before."""
    first = 0
    for t, table in enumerate(tables):
        for g in range(table.metadata.num_row_groups):
            rows = table.metadata.row_group(g).num_rows
            if i < first + rows:
                if (t, g) not in groups:
                    groups[(t, g)] = table.read_row_group(g, columns=["path"]).column(0)
                return groups[(t, g)][i - first]
            first += rows
    raise IndexError(f"row {i} of a store of {first} rows")


def open_table(path: Path, rows: int) -> pq.ParquetFile:
    """An item table, opened (memory-mapped: it stays readable even if a writer removes it) and
    checked against its row count; its rows are read only when asked for."""
    table = pq.ParquetFile(pa.memory_map(str(path)), page_checksum_verification=True)
    if table.metadata.num_rows != rows or table.schema_arrow not in (ITEM_SCHEMA, LEGACY_ITEM_SCHEMA):
        raise ValueError(f"{path.name} holds {table.metadata.num_rows} rows of {table.schema_arrow.names}, not {rows} items")
    return table


# --- deleted rows --------------------------------------------------------------------------------


def load_deleted(path: Path, rows: int, crc32: str = "") -> np.ndarray:
    """Sorted, distinct row ids (int64), each below `rows`, with the checksum `crc32` (if recorded)."""
    if crc32:
        fileio.verify(path, crc32)
    ids = fileio.load_npy(path)
    if ids.dtype != np.int64 or ids.ndim != 1 or (len(ids) and (ids[0] < 0 or ids[-1] >= rows or (np.diff(ids) <= 0).any())):
        raise ValueError(f"{path.name} is not a sorted list of rows below {rows}")
    return ids


# --- fingerprint ---------------------------------------------------------------------------------


def empty_fingerprint(encoder: str) -> str:
    """The fingerprint of an empty store of `encoder`: appends fold into it."""
    return fingerprint("", f"format {FORMAT_VERSION}, {encoder}", 0)


def fingerprint(previous: str, change: str, dim: int, table: pa.Table | None = None, deleted: np.ndarray | None = None) -> str:
    """The fingerprint after a change: a hash of the previous one and what changed (rows appended:
    their paths and content hashes; rows deleted: their ids), so it never needs the whole store."""
    h = hashlib.sha256(f"{previous}\n{change}\n{dim}\n".encode())
    if table is not None and table.num_rows:
        for column in ("path", "sha256"):
            values = table.column(column).combine_chunks().cast(pa.binary())
            joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values), b"\0")
            h.update(joined[0].as_buffer() or b"")
            h.update(b"\n")
    if deleted is not None:
        h.update(np.ascontiguousarray(deleted, np.int64).tobytes())
    return h.hexdigest()[:16]
