"""Store format 2 (vector_search/store/: store.py, files.py, updates.py, migration.py) on real photos and real Lite0 vectors:
appends keep earlier bytes, garbage left by a killed writer is ignored then removed, deletions are
marked then compacted, format-1 stores migrate, readers keep what they mapped."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import copy_subset
from test_robustness import cli, json_rows

from vector_search.engine import Engine
from vector_search.imaging.images import load_image
from vector_search.store import files as storefiles
from vector_search.store import updates
from vector_search.store.files import LEGACY_FILE, MANIFEST_FILE
from vector_search.store.store import Store, StoreError
from vector_search.store.updates import update_store

pytestmark = pytest.mark.slow

ENCODER = "efficientnet-lite0"
ROW_BYTES = 1280 * 4


@pytest.fixture
def no_compaction(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat every store as big: only COMPACT_DELETED_SHARE deleted rows compact it."""
    monkeypatch.setattr(updates, "COMPACT_BELOW_BYTES", 0)


def index(dataset: Path, root: Path, lite0, **options):
    """update_store with no checkpoint unless asked (the tables are then one per update, whatever the machine's speed)."""
    return update_store(dataset, root, encoder=lite0, **{"checkpoint_seconds": 1e9, **options})


def manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_FILE).read_text())


def embed(lite0, path: Path) -> np.ndarray:
    return lite0.embed(lite0.preprocess(load_image(path, min_side=lite0.decode_side))[None])[0]


def test_an_update_appends_and_leaves_earlier_bytes(small_dataset: Path, tmp_path: Path, lite0, no_compaction: None) -> None:
    root = tmp_path / "features"
    first, _ = index(small_dataset, root, lite0)
    folder = first.directory
    vectors = folder / storefiles.vectors_name(first.generation)
    (table, rows), = manifest(folder)["tables"]
    inode, head, table_bytes = vectors.stat().st_ino, vectors.read_bytes(), (folder / table).read_bytes()
    assert isinstance(first.vectors, np.memmap) and rows == len(head) // ROW_BYTES == 12

    copy_subset(small_dataset, {"dog": 2})
    second, report = index(small_dataset, root, lite0)
    assert report.added == [os.path.join("dog", p.name) for p in sorted((small_dataset / "dog").iterdir())]
    assert (second.generation, len(second), second.live) == (first.generation, 14, None)
    assert vectors.stat().st_ino == inode and vectors.read_bytes()[: len(head)] == head  # appended in place
    assert (folder / table).read_bytes() == table_bytes and [r for _, r in manifest(folder)["tables"]] == [12, 2]
    np.testing.assert_array_equal(second.vectors[:12], first.vectors)
    dog = small_dataset / "dog" / sorted(os.listdir(small_dataset / "dog"))[0]
    np.testing.assert_allclose(second.vectors[second.find(dog)], embed(lite0, dog), atol=1e-5)
    assert second.fingerprint != first.fingerprint
    assert Store.load(folder).fingerprint == Store.load(folder).fingerprint == second.fingerprint  # kept, stable


def test_checkpoints_append_tables_and_a_small_store_is_compacted(small_dataset: Path, tmp_path: Path, lite0,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "features"
    with monkeypatch.context() as patch:
        patch.setattr(updates, "COMPACT_BELOW_BYTES", 0)
        store, _ = index(small_dataset, root, lite0, batch_size=4, checkpoint_seconds=0)  # a checkpoint per batch
    saved = manifest(store.directory)
    assert [r for _, r in saved["tables"]] == [4, 4, 4] and saved["complete"] and saved["deleted"] is None
    merged = store.with_tables_merged()  # what an update does past MAX_TABLES tables: the rows stay
    assert [r for _, r in manifest(store.directory)["tables"]] == [12] and len(storefiles.store_files(store.directory)) == 2
    assert (merged.generation, merged.fingerprint, merged.items) == (store.generation, store.fingerprint, store.items)

    copy_subset(small_dataset, {"dog": 1})  # a small store is rewritten whole at the end of an update that changes it
    again, _ = index(small_dataset, root, lite0, batch_size=4, checkpoint_seconds=0)
    assert again.generation > store.generation and [r for _, r in manifest(again.directory)["tables"]] == [13]
    assert storefiles.store_files(again.directory) == sorted([storefiles.vectors_name(again.generation), manifest(again.directory)["tables"][0][0]])
    np.testing.assert_array_equal(again.vectors[:12], store.vectors)
    assert [i.path for i in again.items[:12]] == [i.path for i in store.items]


def test_a_long_run_merges_its_tables_as_it_checkpoints(small_dataset: Path, tmp_path: Path, lite0, no_compaction: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each table holds a file open in every process that opened the store: a run of thousands of
    checkpoints (1M photos) must not pile them up until its end, where a reader or a resumed run
    would open them all."""
    monkeypatch.setattr(updates, "MAX_TABLES", 2)
    root, seen = tmp_path / "features", []

    def progress(done: int, total: int) -> None:  # a reader opening the store between checkpoints
        if (root / ENCODER / MANIFEST_FILE).exists():
            seen.append(len(Store.load(root / ENCODER, checkpoint=True).manifest.tables))

    store, _ = index(small_dataset, root, lite0, batch_size=2, checkpoint_seconds=0, progress=progress)  # 6 checkpoints
    assert len(seen) >= 5 and max(seen) <= 3  # never more than MAX_TABLES + 1
    assert len(store.manifest.tables) <= 3 and len(store) == 12 and store.manifest.complete
    assert sorted(i.path for i in store.items) == sorted(str(p.relative_to(small_dataset)) for p in small_dataset.rglob("*.jpg"))
    np.testing.assert_allclose(store.vectors[store.find(small_dataset / store.items[0].path)], embed(lite0, small_dataset / store.items[0].path), atol=1e-5)


def test_a_moved_folder_reuses_its_vectors_in_bounded_commits(small_dataset: Path, tmp_path: Path, lite0, no_compaction: None,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Reused vectors (moved, renamed, touched files) are committed WAITING_ROWS at a time, not
    stacked whole in memory: a moved folder of 500k photos would be 2.5 GB."""
    root = tmp_path / "features"
    first, _ = index(small_dataset, root, lite0)
    monkeypatch.setattr(updates, "WAITING_ROWS", 3)
    monkeypatch.setattr(updates, "COMPACT_DELETED_SHARE", 1.0)  # keep the tables to look at
    (small_dataset / "cat").rename(small_dataset / "kitten")
    (small_dataset / "bus").rename(small_dataset / "coach")
    moved, report = index(small_dataset, root, lite0)
    assert report.embedded == 0 and len(report.renamed) == 8
    assert [r for _, r in manifest(moved.directory)["tables"]] == [12, 3, 3, 2] and moved.manifest.complete
    assert len(moved.deleted_rows) == 8 and moved.generation == first.generation
    was = [i.path for i in first.items]
    for photo in sorted((small_dataset / "kitten").iterdir()):  # the saved vectors, under their new paths
        np.testing.assert_array_equal(moved.vectors[moved.find(photo)], first.vectors[was.index(f"cat/{photo.name}")])


def test_what_a_killed_writer_left_is_ignored_then_removed(small_dataset: Path, tmp_path: Path, lite0, no_compaction: None) -> None:
    root = tmp_path / "features"
    store, _ = index(small_dataset, root, lite0)
    folder, m = store.directory, manifest(store.directory)
    vectors = folder / storefiles.vectors_name(store.generation)
    with open(vectors, "ab") as f:  # rows a killed writer wrote but never committed
        f.write(np.full((3, 1280), np.nan, np.float32).tobytes() + b"junk")
    orphan = folder / storefiles.table_name(store.generation, m["commit"] + 1)
    orphan.write_bytes(b"PAR1 half a table")
    stale = folder / storefiles.vectors_name(store.generation + 5)
    stale.write_bytes(b"\0" * ROW_BYTES)

    reader = Store.load(folder)
    assert len(reader) == 12 and np.isfinite(reader.vectors).all() and reader.fingerprint == store.fingerprint

    copy_subset(small_dataset, {"dog": 1})
    dog = next((small_dataset / "dog").iterdir())
    after, report = index(small_dataset, root, lite0)
    assert report.added == [os.path.join("dog", dog.name)] and len(after) == 13
    assert vectors.stat().st_size == 13 * ROW_BYTES and not stale.exists()  # the junk cut, the stray file removed
    assert orphan.exists() and manifest(folder)["tables"][-1] == [orphan.name, 1]  # the name reused for the real table
    np.testing.assert_allclose(after.vectors[12], embed(lite0, dog), atol=1e-5)
    np.testing.assert_array_equal(after.vectors[:12], reader.vectors)


def test_deletions_are_marked_then_compacted(tmp_path: Path, lite0, no_compaction: None, pascal_dataset: Path) -> None:
    dataset = copy_subset(tmp_path / "photos", {"cat": 20, "bus": 20, "boat": 20})
    root = tmp_path / "features"
    first, _ = index(dataset, root, lite0)
    cats, buses = sorted((dataset / "cat").iterdir()), sorted((dataset / "bus").iterdir())
    vector_of = {p: np.array(first.vectors[first.find(p)]) for p in cats + buses}
    for photo in cats[:3]:
        photo.unlink()
    moved = dataset / "cat" / "moved.jpg"
    cats[3].rename(moved)
    shutil.copyfile(sorted((pascal_dataset / "dog").iterdir())[0], buses[0])  # same name, new content

    marked, report = index(dataset, root, lite0)
    assert (len(report.removed), len(report.renamed), report.changed) == (3, 1, [os.path.join("bus", buses[0].name)])
    assert marked.generation == first.generation and len(marked) == 62  # 60 + the changed one + the moved one
    assert marked.live is not None and int(marked.live.sum()) == 57 == len(list(dataset.rglob("*.jpg")))
    assert [marked.find(p) for p in cats[:4]] == [None] * 4
    np.testing.assert_array_equal(marked.vectors[marked.find(moved)], vector_of[cats[3]])  # reused, not re-embedded
    np.testing.assert_allclose(marked.vectors[marked.find(buses[0])], embed(lite0, buses[0]), atol=1e-5)
    assert not marked.is_live(first.find(buses[0])) and marked.fingerprint not in (first.fingerprint, "")
    hits = [r.item for r in Engine(root).similar_images(buses[2], k=100)]  # deleted rows never answer
    assert len(hits) == len(set(hits)) == 56 and all(Path(h).exists() for h in hits)

    for photo in cats[4:7]:  # 8 of 62 rows deleted: past 10%, the store is compacted
        photo.unlink()
    compacted, _ = index(dataset, root, lite0)
    assert compacted.generation > marked.generation and compacted.live is None and len(compacted) == 54
    assert manifest(compacted.directory)["deleted"] is None and len(manifest(compacted.directory)["tables"]) == 1
    np.testing.assert_array_equal(compacted.vectors[compacted.find(moved)], vector_of[cats[3]])
    for photo in cats[7:] + buses[1:]:  # the rows kept are the same vectors
        np.testing.assert_array_equal(compacted.vectors[compacted.find(photo)], vector_of[photo])
    assert compacted.fingerprint not in (marked.fingerprint, first.fingerprint)


def test_a_reader_keeps_its_vectors_when_another_writer_compacts(small_dataset: Path, tmp_path: Path, lite0, no_compaction: None) -> None:
    root = tmp_path / "features"
    store, _ = index(small_dataset, root, lite0)
    reader = Store.load(store.directory)  # holds the old generation; its items not read yet
    want = np.array(reader.vectors)
    writer = Store.load(store.directory)
    compacted = writer.append([], np.zeros((0, 1280), np.float32), deleted=[0, 5]).compacted()
    assert not (store.directory / storefiles.vectors_name(store.generation)).exists()  # removed from the folder...
    np.testing.assert_array_equal(reader.vectors, want)  # ...but still mapped by the reader
    assert [i.path for i in reader.items] == [i.path for i in store.items]  # its tables were opened at load
    assert reader.changed_on_disk() and len(Store.load(store.directory)) == len(compacted) == 10
    with pytest.raises(StoreError, match="changed since it was loaded"):  # a stale store never writes
        reader.append([], np.zeros((0, 1280), np.float32), deleted=[1])


def test_a_reader_racing_a_compaction_reads_the_new_manifest(small_dataset: Path, tmp_path: Path, lite0,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store, _ = index(small_dataset, tmp_path / "features", lite0)
    map_vectors, raced = storefiles.map_vectors, []

    def compact_first(path: Path, rows: int, dim: int) -> np.ndarray:
        """Another writer compacts the store after the reader read the manifest, before it maps the vectors."""
        if not raced:
            raced.append(path)
            Store.load(store.directory).append([], np.zeros((0, dim), np.float32), deleted=[0]).compacted()
        return map_vectors(path, rows, dim)

    monkeypatch.setattr(storefiles, "map_vectors", compact_first)
    loaded = Store.load(store.directory)  # the file it was about to map is gone: it reads the new manifest
    assert raced == [store.directory / storefiles.vectors_name(store.generation)]
    assert loaded.generation > store.generation and len(loaded) == 11 and loaded.items == store.items[1:]
    np.testing.assert_array_equal(loaded.vectors, store.vectors[1:])


def write_v1(folder: Path, store: Store) -> None:
    """A format-1 store, written the way the code before format 2 did."""
    folder.mkdir(parents=True)
    meta = {"version": 1, "encoder": store.encoder, "dataset": store.dataset, "complete": True}
    with open(folder / LEGACY_FILE, "wb") as f:
        np.savez(f, vectors=np.asarray(store.vectors), paths=np.array([i.path for i in store.items], dtype=str),
                 sizes=np.array([i.size for i in store.items], dtype=np.int64), mtimes=np.array([i.mtime_ns for i in store.items], dtype=np.int64),
                 hashes=np.array([i.sha256 for i in store.items], dtype=str), meta=np.array(json.dumps(meta)))


def test_a_format_1_store_is_converted_once(small_dataset: Path, tmp_path: Path, lite0, caplog: pytest.LogCaptureFixture) -> None:
    real, _ = index(small_dataset, tmp_path / "v2", lite0)
    folder = tmp_path / "features" / ENCODER
    write_v1(folder, real)
    with caplog.at_level(logging.WARNING, logger="vector_search"):
        converted = Store.load(folder)
    assert "converted the feature store" in caplog.text
    assert not (folder / LEGACY_FILE).exists() and converted.saved and isinstance(converted.vectors, np.memmap)
    identity = lambda items: [(i.path, i.size, i.mtime_ns, i.sha256) for i in items]  # noqa: E731  (format 1 has no metadata)
    assert identity(converted.items) == identity(real.items) and converted.dataset == real.dataset
    np.testing.assert_array_equal(converted.vectors, real.vectors)
    again, report = index(small_dataset, tmp_path / "features", lite0)  # nothing to embed after it: the metadata is read
    assert report.unchanged == 12 and report.embedded == 0 and again.fingerprint == converted.fingerprint
    assert again.items == real.items and any("nothing re-embedded" in note for note in report.notes)

    # Indexing a format-1 store (its writer lock held, as `index` does) converts it too.
    write_v1(tmp_path / "index" / ENCODER, real)
    indexed, report = index(small_dataset, tmp_path / "index", lite0)
    assert report.embedded == 0 and report.unchanged == 12 and "converted the feature store" in report.notes[0]
    assert not (tmp_path / "index" / ENCODER / LEGACY_FILE).exists() and Store.load(indexed.directory).items == real.items

    # Through the CLI: a writable format-1 store is converted, and the CLI says so.
    write_v1(tmp_path / "cli" / ENCODER, real)
    query = real.paths[0]
    result = cli("similar", query, "-k", "3", "--json", "--features", tmp_path / "cli")
    assert result.returncode == 0 and "converted the feature store" in result.stderr, result.stderr
    assert (tmp_path / "cli" / ENCODER / MANIFEST_FILE).is_file() and not (tmp_path / "cli" / ENCODER / LEGACY_FILE).exists()
    answer = json_rows(result.stdout)[0]["results"]

    # A read-only one is read in memory, as before, and nothing is written.
    write_v1(tmp_path / "ro" / ENCODER, real)
    for path in (tmp_path / "ro" / ENCODER, tmp_path / "ro"):
        path.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    try:
        before = sorted(str(p) for p in (tmp_path / "ro").rglob("*"))
        result = cli("similar", query, "-k", "3", "--json", "--features", tmp_path / "ro", unprivileged=True)
        assert result.returncode == 0 and "read whole into memory" in result.stderr, result.stderr
        assert json_rows(result.stdout)[0]["results"] == answer
        assert sorted(str(p) for p in (tmp_path / "ro").rglob("*")) == before
    finally:
        for path in (tmp_path / "ro", tmp_path / "ro" / ENCODER):
            path.chmod(0o755)


def test_threads_reading_one_loaded_store_at_once_get_its_rows(tmp_path: Path) -> None:
    """Eight threads asking a freshly loaded store for rows at once (a server's first queries): each
    gets the row's item. Two threads reading one Parquet file at once crashed the process (a
    segfault in pyarrow, seen in CI), so the store reads its tables one read at a time."""
    import threading

    from vector_search.store.store import Item

    items = [Item(f"class{i % 7}/photo_{i:05d}.jpg", 1000 + i, i, f"{i:064x}") for i in range(4000)]
    Store(tmp_path / "store", "efficientnet-lite0", str(tmp_path), items, np.zeros((4000, 4), np.float32)).save()
    want = {k: (items[k * 499], os.path.join(str(tmp_path), items[k * 499 + 1].path), items[k].sha256) for k in range(8)}

    def at_once(store: Store) -> tuple[dict, list]:
        barrier, got, errors = threading.Barrier(8), {}, []

        def read(k: int) -> None:
            barrier.wait()
            try:
                got[k] = (store.item(k * 499), store.path(k * 499 + 1), store.column("sha256")[k].as_py())
            except Exception as err:  # noqa: BLE001 (what a thread hit is the test's failure message)
                errors.append(err)

        threads = [threading.Thread(target=read, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return got, errors

    for _ in range(40):
        got, errors = at_once(Store.load(tmp_path / "store"))
        assert not errors and got == want, errors
