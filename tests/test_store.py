"""store.py: incremental indexing of real photos with the real default encoder."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vector_search.store.files import MANIFEST_FILE
from vector_search.store.folders import open_store
from vector_search.store.store import Store, StoreError
from vector_search.store.updates import update_store

pytestmark = pytest.mark.slow


class CountingEncoder:
    """The real encoder, counting how many images it embeds."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.name, self.dim, self.preprocess = self.inner.name, self.inner.dim, self.inner.preprocess
        self.decode_side, self.load = self.inner.decode_side, self.inner.load
        self.embedded = 0

    def embed(self, batch: np.ndarray) -> np.ndarray:
        self.embedded += len(batch)
        return self.inner.embed(batch)


@pytest.fixture(scope="module")
def encoder(lite0) -> CountingEncoder:
    return CountingEncoder(lite0)  # wraps the session's Lite0 (conftest), the default encoder


def index(dataset: Path, root: Path, encoder: CountingEncoder):
    before = encoder.embedded
    store, report = update_store(dataset, root, encoder=encoder)
    return store, report, encoder.embedded - before


def test_first_index_then_unchanged(small_dataset: Path, tmp_path: Path, encoder: CountingEncoder) -> None:
    root = tmp_path / "features"
    store, report, embedded = index(small_dataset, root, encoder)
    assert embedded == 12 and len(report.added) == 12 and not report.skipped
    assert store.vectors.shape == (12, 1280) and store.vectors.dtype == np.float32
    assert sorted(set(store.classes)) == ["boat", "bus", "cat"]
    assert store.paths[0] == os.path.join(str(small_dataset), store.items[0].path)

    mtime = (root / "efficientnet-lite0" / MANIFEST_FILE).stat().st_mtime_ns
    again, report, embedded = index(small_dataset, root, encoder)
    assert embedded == 0 and report.unchanged == 12 and report.embedded == 0
    assert (root / "efficientnet-lite0" / MANIFEST_FILE).stat().st_mtime_ns == mtime  # nothing rewritten
    np.testing.assert_array_equal(again.vectors, store.vectors)
    assert open_store(root).fingerprint == store.fingerprint


def test_folder_changes_reembed_only_what_changed(small_dataset: Path, tmp_path: Path, encoder: CountingEncoder, pascal_dataset: Path) -> None:
    root = tmp_path / "features"
    store, _, _ = index(small_dataset, root, encoder)
    cats = sorted((small_dataset / "cat").iterdir())
    buses = sorted((small_dataset / "bus").iterdir())
    old_vector = store.vectors[store.find(cats[1])]

    cats[0].unlink()                                            # delete
    cats[1].rename(small_dataset / "cat" / "renamed.jpg")       # rename
    shutil.copy(pascal_dataset / "dog" / "2008_000053.jpg", buses[0])  # modify in place
    os.utime(buses[1])                                          # touch only
    (small_dataset / "dog").mkdir()
    shutil.copy(pascal_dataset / "dog" / "2008_000053.jpg", small_dataset / "dog" / "new.jpg")  # add

    store, report, embedded = index(small_dataset, root, encoder)
    assert report.removed == [os.path.join("cat", cats[0].name)]
    assert report.renamed == [(os.path.join("cat", cats[1].name), os.path.join("cat", "renamed.jpg"))]
    assert report.changed == [os.path.join("bus", buses[0].name)]
    assert report.added == [os.path.join("dog", "new.jpg")]
    assert embedded == 2  # the modified and the new photo; the touched and renamed ones reuse vectors
    assert len(store) == 12
    np.testing.assert_array_equal(store.vectors[store.find(small_dataset / "cat" / "renamed.jpg")], old_vector)
    modified, new = store.find(buses[0]), store.find(small_dataset / "dog" / "new.jpg")
    np.testing.assert_allclose(store.vectors[modified], store.vectors[new], atol=1e-5)
    assert sorted(p for p in store.paths) == sorted(str(small_dataset / rel) for rel in [i.path for i in store.items])


def test_bad_files_skipped_with_reasons(small_dataset: Path, tmp_path: Path, encoder: CountingEncoder) -> None:
    (small_dataset / "cat" / "empty.jpg").write_bytes(b"")
    (small_dataset / "cat" / "text.jpg").write_text("not a photo")
    store, report, _ = index(small_dataset, tmp_path / "features", encoder)
    assert len(store) == 12
    assert dict(report.skipped) == {
        os.path.join("cat", "empty.jpg"): "not an image (unrecognised or empty file)",
        os.path.join("cat", "text.jpg"): "not an image (unrecognised or empty file)",
    }


def test_damaged_store_is_detected_and_rebuilt(small_dataset: Path, tmp_path: Path, encoder: CountingEncoder) -> None:
    root = tmp_path / "features"
    index(small_dataset, root, encoder)
    file = root / "efficientnet-lite0" / MANIFEST_FILE
    file.write_bytes(file.read_bytes()[:50])  # truncated
    with pytest.raises(StoreError, match="damaged"):
        Store.load(file.parent)
    store, report, embedded = index(small_dataset, root, encoder)
    assert embedded == 12 and len(store) == 12 and "rebuilding" in report.notes[0]
    assert json.loads(file.read_text())["rows"] == 12


def test_missing_store_message(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="vector-search index"):
        open_store(tmp_path)


def test_a_path_is_read_with_its_row_group_only(tmp_path: Path, monkeypatch) -> None:
    """A query's answers need a few paths: each is read with its row group (files.ROW_GROUP rows), never
    the whole path column (4 s at 1M rows)."""
    from vector_search.store import files as storefiles
    from vector_search.store.store import Item, Store

    monkeypatch.setattr(storefiles, "ROW_GROUP", 4)
    items = [Item(f"d/{i:02d}.jpg", i + 1, i, f"{i:064x}") for i in range(10)]
    Store(tmp_path / "s", "efficientnet-lite0", "/photos", items, np.eye(10, 8, dtype=np.float32) + 1).save()
    store = Store.load(tmp_path / "s")
    assert store._tables[0].metadata.num_row_groups == 3
    assert store.path(9) == "/photos/d/09.jpg" and store.path(1) == "/photos/d/01.jpg"
    assert sorted(store.__dict__["path_groups"]) == [(0, 0), (0, 2)] and "path" not in store.__dict__.get("columns", {})
    assert [store.path(i) for i in range(10)] == store.paths
