"""Indexing a folder into its store (store.py): only what changed is embedded, and only appended.

Indexing a folder again re-embeds only new or changed files, reuses renamed, touched or copied
ones by content hash (their vector is appended under the new item: nothing to re-embed), marks
the rows of deleted, changed or moved files deleted, and checkpoints as it goes, so an interrupted
run loses little. Unchanged rows stay where they are. Small stores are compacted at the end of
every update, so they never keep deleted rows (the 1000-photo demo looks as it always did).
"""

from __future__ import annotations

import os
import time
from dataclasses import astuple, dataclass, field, replace
from typing import Callable

import numpy as np

from vector_search import config, fileio
from vector_search.imaging.embedding import Embedder, local_embedder
from vector_search.imaging.images import ImageError, find_images, open_regular
from vector_search.store import files as storefiles
from vector_search.store.files import LEGACY_FILE, remove_unnamed
from vector_search.store.folders import has_store, store_dir
from vector_search.store.metadata import read_photo_info
from vector_search.store.store import Item, Store, StoreError

# A store whose vectors take less than this is rewritten (compacted) at the end of every update
# that changed it: 64 MiB (13k rows of 1280 floats) is written in well under a second.
COMPACT_BELOW_BYTES = 64 << 20
COMPACT_DELETED_SHARE = 0.10  # a bigger store is compacted when this share of its rows is deleted
# Past this many item tables (one per checkpoint: 20 s) they are merged into one, during a run too:
# every table holds a file open (memory-mapped) in each process that opened the store, and a
# 1M-photo run makes thousands of checkpoints (a soft limit of 1024 open files is common).
MAX_TABLES = 32
# Rows waiting for a commit are committed (a checkpoint) when this many pile up, whatever the clock
# says: a moved folder of 500k photos reuses 500k saved vectors at once (2.5 GB if stacked whole).
WAITING_ROWS = 32_768


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
    features_root: str | os.PathLike | None = None,
    encoder_name: str | None = None,
    encoder: object | None = None,
    progress: Progress | None = None,
    batch_size: int = 32,
    checkpoint_seconds: float | None = None,
    rebuild: bool = False,
    embedder: Embedder | None = None,
    index_kind: str | None = None,
) -> tuple[Store, UpdateReport]:
    """Bring the store of `encoder_name` in line with the images under `dataset`; the caller
    holds the store's writer lock (locks.py).

    `rebuild` re-embeds every image into a fresh generation instead of reusing saved vectors.
    `encoder` (an `encoders.Encoder`) is created only if some file must be embedded, so an
    unchanged folder never loads a model (and writes nothing). `embedder` replaces the local
    embedding step (it must yield vectors of `encoder_name`: see embedding.py). Progress is
    appended every `checkpoint_seconds` (default: $VECTOR_SEARCH_CHECKPOINT_SECONDS, else 20).
    `index_kind` is recorded in the store's metadata (None keeps the saved one).
    """
    from vector_search.imaging.encoders import DEFAULT_ENCODER, get_encoder

    encoder_name = encoder_name or DEFAULT_ENCODER
    if encoder is not None and getattr(encoder, "name", encoder_name) != encoder_name:  # same shape, other space
        raise StoreError(f"the {encoder.name} encoder cannot write the {encoder_name} store: vectors of two encoders never mix")
    if checkpoint_seconds is None:
        checkpoint_seconds = config.checkpoint_seconds()
    report = UpdateReport()
    old = _load_for_update(store_dir(features_root, encoder_name), encoder_name, str(dataset), rebuild, report)
    plan = _plan_update(dataset, old, report)

    writer = _Appender(old if old.saved else Store.next_generation(old.directory, replace(old.manifest, dataset=str(dataset))))
    for item, row in plan.reuse:
        writer.add(item, old.vectors[row])
    if plan.todo:
        checkpoint = _Checkpoint(checkpoint_seconds, lambda: writer.commit(complete=False))
        embedder = embedder or local_embedder(encoder or get_encoder(encoder_name), batch_size)
        _embed_into(writer, dataset, plan.todo, embedder, report, progress, checkpoint)
    kind = {"index_kind": index_kind} if index_kind else {}
    if not (writer.written or writer.items or plan.deleted or not old.saved or not old.manifest.complete
            or old.dataset != str(dataset) or kind.get("index_kind", old.index_kind) != old.index_kind):
        store = old  # nothing changed: nothing written (but a compaction a killed run owed)
    else:
        store = writer.commit(deleted=plan.deleted, complete=True, dataset=str(dataset), **kind)
    return _compacted(store, report) if store.saved and needs_compaction(store) else store, report


def _compacted(store: Store, report: UpdateReport) -> Store:
    """The store compacted, or as it is (its update is committed) if that fails: the next update compacts it."""
    try:
        return store.compacted()
    except OSError as err:  # (a full disk: DiskFullError)
        report.notes.append(f"the update is saved, but compacting the store failed ({err}): the next index compacts it")
        return store


def needs_compaction(store: Store) -> bool:
    """Whether to rewrite the store's live rows as a new generation: a small one whenever it has
    more than one table or a deleted row; a big one once COMPACT_DELETED_SHARE of it is deleted
    (a new generation means rebuilding its index, which a big store does rarely)."""
    deleted = len(store.deleted_rows)
    if store.vectors.nbytes < COMPACT_BELOW_BYTES:
        return deleted > 0 or len(store.manifest.tables) > 1
    return deleted > COMPACT_DELETED_SHARE * len(store)


def _load_for_update(directory: os.PathLike, encoder_name: str, dataset: str, rebuild: bool, report: UpdateReport) -> Store:
    """The store to update: the saved one (a format-1 one converted first), or an empty one in
    memory for `rebuild` or when the saved one is damaged (said in the report)."""
    old = Store(directory, encoder_name, dataset)
    try:
        if not rebuild:
            saved = Store.load(directory, convert=False, checkpoint=True)  # this process holds the lock: convert below
            for column in storefiles.ITEM_SCHEMA.names:  # read now (the plan reads them all): a damaged table means a rebuild
                saved.column(column)
            old = saved
            remove_unnamed(saved.directory, saved.manifest)  # what a writer killed mid-commit or mid-compaction left
    except StoreError as err:
        if has_store(directory):
            report.notes.append(f"{err}; rebuilding it")
    fileio.remove_stale_temporaries(directory)  # left by an indexer that was killed mid-save
    if not old.saved and len(old):  # a format-1 store, read in memory
        old.save()
        report.notes.append(f"converted the feature store {directory} to format 2 (same {len(old)} vectors; {LEGACY_FILE} removed)")
    unread = old.rows_without_metadata() if old.saved else ()
    if len(unread):
        old = _with_metadata(old, dataset, unread)
        report.notes.append(f"read the date taken, camera and size of {len(unread)} photos already indexed (nothing re-embedded)")
    return old


def _with_metadata(store: Store, dataset: str, rows: np.ndarray) -> Store:
    """`store` with the photo metadata of `rows` read from their files: one new item table, same
    generation, vectors and fingerprint."""
    table = store.table
    paths = storefiles.decode_paths(table.column("path"))
    columns = [table.column(name).to_pylist() for name in storefiles.ITEM_SCHEMA.names[1:]]
    for row in rows.tolist():
        for column, value in zip(columns[3:], astuple(read_photo_info(os.path.join(dataset, paths[row])))):
            column[row] = value
    return store.with_tables_merged(storefiles.items_table(paths, *columns))


@dataclass
class _Plan:
    """What an update does to the old store's rows."""

    reuse: list[tuple[Item, int]] = field(default_factory=list)  # (new item, old row whose vector it reuses), to append
    todo: list[Item] = field(default_factory=list)  # to embed and append
    deleted: list[int] = field(default_factory=list)  # old rows to mark deleted


def _plan_update(dataset: str | os.PathLike, old: Store, report: UpdateReport) -> _Plan:
    """Which images keep their row (unchanged), which reuse a saved vector (touched, renamed or
    copied: same content), which must be embedded, and which rows go (deleted, changed, moved or
    unreadable files); counts each in `report`, with the files that are gone or unreadable."""
    rel_paths, problems = find_images(dataset, within=config.serve_root())
    report.skipped.extend(problems)
    paths = storefiles.decode_paths(old.column("path"))
    sizes, mtimes, hashes = (old.column(c).to_pylist() for c in ("size", "mtime_ns", "sha256"))
    finite = ~storefiles.damaged_rows(old.vectors, old.manifest.checksums, old.directory / old.manifest.vectors)
    if not finite.all():
        report.notes.append(f"{len(finite) - finite.sum()} vectors in {old.directory / old.manifest.vectors} are damaged"
                            " (checksum, or not finite): their photos are embedded again")
    alive = np.ones(len(old), bool) if old.live is None else old.live
    live = np.flatnonzero(alive & finite).tolist()  # damaged rows are neither kept nor reused
    by_path = {paths[i]: i for i in live}
    by_hash = {hashes[i]: i for i in live}  # the last copy wins: a rename is reported
    plan, kept = _Plan(), set()
    for rel in rel_paths:
        full = os.path.join(dataset, rel)
        try:
            st = os.stat(full)
            j = by_path.get(rel)
            if j is not None and (sizes[j], mtimes[j]) == (st.st_size, st.st_mtime_ns):
                kept.add(j)
                report.unchanged += 1
                continue
            item = Item(rel, st.st_size, st.st_mtime_ns, file_sha256(full), *astuple(read_photo_info(full)))
        except OSError as err:
            report.skipped.append((rel, f"cannot read file: {err.strerror or err}"))
            continue
        except ImageError as err:  # a named pipe or a device: never opened for reading
            report.skipped.append((rel, str(err)))
            continue
        if item.sha256 in by_hash:  # touched, copied or renamed: same content, same vector
            k = by_hash[item.sha256]
            plan.reuse.append((item, k))
            if paths[k] == rel:
                report.unchanged += 1
            else:
                report.renamed.append((paths[k], rel))
        else:
            plan.todo.append(item)
            (report.changed if rel in by_path else report.added).append(rel)
    present, renamed_from = set(rel_paths), {a for a, _ in report.renamed}
    plan.deleted = [i for i in np.flatnonzero(alive).tolist() if i not in kept]
    report.removed = [paths[i] for i in live if paths[i] not in present and paths[i] not in renamed_from]
    return plan


class _Appender:
    """The store as this update has committed it so far, and the rows waiting for the next commit."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.items: list[Item] = []
        self.vectors: list[np.ndarray] = []
        self.written = 0  # rows committed by this update

    def add(self, item: Item, vector: np.ndarray) -> None:
        self.items.append(item)
        self.vectors.append(vector)
        if len(self.items) >= WAITING_ROWS:
            self.commit(complete=False)

    def commit(self, **changes: object) -> Store:
        """Append the waiting rows (Store.append: `deleted` rows and manifest `changes` too);
        past MAX_TABLES item tables, merge them."""
        if self.items or changes.get("complete", False):
            vectors = np.stack(self.vectors).astype(np.float32, copy=False) if self.vectors else np.zeros((0, 0), np.float32)
            self.store = self.store.append(self.items, vectors, **changes)
            self.written += len(self.items)
            self.items, self.vectors = [], []
            if len(self.store.manifest.tables) > MAX_TABLES:
                self.store = self.store.with_tables_merged()
        return self.store


@dataclass
class _Checkpoint:
    """Calls `save` when `seconds` have passed since the last save."""

    seconds: float
    save: Callable[[], object]
    last: float = field(default_factory=time.monotonic)

    def tick(self) -> None:
        if time.monotonic() - self.last > self.seconds:
            self.save()
            self.last = time.monotonic()


def _embed_into(
    writer: _Appender,
    dataset: str | os.PathLike,
    todo: list[Item],
    embedder: Embedder,
    report: UpdateReport,
    progress: Progress | None,
    checkpoint: _Checkpoint,
) -> None:
    """Embed `todo`, handing (item, vector) to `writer` as batches come (checkpoints commit them);
    files that fail to decode are skipped and no longer counted as added or changed."""
    failed: set[str] = set()
    done = 0
    for batch in embedder([os.path.join(dataset, t.path) for t in todo]):
        for i, reason in batch.errors:
            report.skipped.append((todo[i].path, reason))
            failed.add(todo[i].path)
        if batch.vectors is not None:
            for row, i in enumerate(batch.indices):
                if np.isfinite(batch.vectors[row]).all():
                    writer.add(todo[i], batch.vectors[row])
                else:  # never stored: tried again at the next update
                    report.skipped.append((todo[i].path, "the encoder gave a vector that is not finite"))
                    failed.add(todo[i].path)
                    done -= 1  # counted once, as failed
            done += len(batch.indices)
        if progress:
            progress(done + len(failed), len(todo))
        checkpoint.tick()
    report.added = [p for p in report.added if p not in failed]
    report.changed = [p for p in report.changed if p not in failed]
