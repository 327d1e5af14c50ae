"""`vector-search index FOLDER --ray`: the embedding step on a local Ray gives the store of the local
path (same items, vectors within 1e-5, same skipped files and reasons) and resumes like it.

One local Ray serves the module (ray_embedder uses a Ray already initialised in the process);
CI installs the extra (.ci/run), so there a missing Ray fails instead of skipping.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, copy_subset

from vector_search import cli
from vector_search.engine import Engine
from vector_search.store.folders import store_dir
from vector_search.store.store import Store
from vector_search.store.updates import update_store

ENCODER = "efficientnet-lite0"
PER_CLASS = 10  # 20 classes: 200 photos


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray for the whole module, started as the Ray path starts it."""
    ray = __import__("ray") if os.environ.get("CI") else pytest.importorskip("ray")
    from vector_search.imaging.ray_embedding import connect

    assert connect(ray, None)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> Path:
    """200 real photos (10 per class), a truncated JPEG and a text file named .png."""
    root = copy_subset(tmp_path_factory.mktemp("ray") / "photos", {c.name: PER_CLASS for c in pascal_dataset.iterdir()})
    first = sorted((pascal_dataset / "cat").iterdir())[0]
    (root / "cat" / "truncated.jpg").write_bytes(first.read_bytes()[:3000])
    (root / "bus" / "notes.png").write_text("not a picture\n")
    return root


@pytest.fixture(scope="module")
def local_store(photos: Path, tmp_path_factory: pytest.TempPathFactory):
    """The folder indexed by the local path: (store, report)."""
    root = tmp_path_factory.mktemp("local")
    engine = Engine(root, ENCODER)
    report = engine.index(photos)
    return Store.load(store_dir(root, ENCODER)), report


def assert_same_store(store: Store, reference: Store) -> None:
    """Same files (path, size, mtime, content hash), vectors within 1e-5. Rows are in append order,
    which is the order batches come back: Ray's may differ from the local path's."""
    order, reference_order = (np.argsort([item.path for item in s.items]) for s in (store, reference))
    assert [store.items[i] for i in order] == [reference.items[i] for i in reference_order]
    np.testing.assert_allclose(store.vectors[order], reference.vectors[reference_order], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_ray_index_gives_the_local_store(ray_local, photos, local_store, tmp_path, capsys):
    reference, local_report = local_store
    root = tmp_path / "features"
    assert cli.main(["index", str(photos), "--features", str(root), "--encoder", ENCODER, "--ray"]) == 0
    out = capsys.readouterr().out
    store = Store.load(store_dir(root, ENCODER))

    assert len(store) == 20 * PER_CLASS
    assert_same_store(store, reference)
    assert sorted(local_report.skipped) == [
        ("bus/notes.png", "not an image (unrecognised or empty file)"),
        ("cat/truncated.jpg", "corrupt image: image file is truncated (1 bytes not processed)"),
    ]
    for path, reason in local_report.skipped:  # the CLI reports the same files, with the same reasons
        assert f"skipped {path}: {reason}" in out
    assert "added 200, changed 0, renamed 0, unchanged 0, removed 0, skipped 2" in out


@pytest.mark.slow
def test_ray_index_resumes_and_embeds_only_new_photos(ray_local, photos, local_store, tmp_path):
    """Interrupted after a few batches, a run resumes from its checkpoint; then photos added to
    the folder are the only ones embedded."""
    from vector_search.imaging.ray_embedding import ray_embedder

    folder = tmp_path / "photos"
    shutil.copytree(photos, folder, ignore=lambda d, names: [n for n in names if n in ("train", "tv_monitor")])
    asked: list[list[str]] = []
    ray = ray_embedder(ENCODER, batch_size=16)

    def counting(paths: list[str]):
        asked.append(list(paths))
        yield from ray(paths)

    class Interrupted(Exception):
        pass

    def interrupt(done: int, total: int) -> None:
        if done >= 48:
            raise Interrupted

    root = tmp_path / "features"
    with pytest.raises(Interrupted):  # every batch is checkpointed; the one in hand is lost
        update_store(folder, root, ENCODER, progress=interrupt, checkpoint_seconds=0, embedder=counting)
    gc.collect()  # closes the abandoned pipeline now, as the end of an interrupted process would
    checkpointed = len(Store.load(store_dir(root, ENCODER), checkpoint=True))
    assert 0 < checkpointed < 180

    store, report = update_store(folder, root, ENCODER, embedder=counting)
    assert report.unchanged == checkpointed
    assert len(asked[1]) == 182 - checkpointed  # 180 photos and 2 bad files, less the checkpointed
    assert len(store) == 180
    assert sorted(report.skipped) == sorted(local_store[1].skipped)

    for name in ("train", "tv_monitor"):
        shutil.copytree(photos / name, folder / name)
    store, report = update_store(folder, root, ENCODER, embedder=counting)
    new = sorted(f"{name}/{p.name}" for name in ("train", "tv_monitor") for p in (photos / name).iterdir())
    assert sorted(report.added) == new and report.unchanged == 180
    assert sorted(os.path.relpath(p, folder) for p in asked[2]) == sorted(new + ["bus/notes.png", "cat/truncated.jpg"])
    assert_same_store(store, local_store[0])


def test_ray_not_installed_is_one_line(monkeypatch, fixture_dataset, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does without the extra
    assert cli.main(["index", str(fixture_dataset), "--features", str(tmp_path / "features"), "--ray"]) == 2
    assert capsys.readouterr().err == "error: Ray is not installed: pip install -e .[ray]\n"
    assert not (tmp_path / "features").exists()


def test_plain_commands_do_not_import_ray():
    code = "import sys, vector_search.cli, vector_search.imaging.ray_embedding; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.slow
def test_ray_worker_error_is_one_line(ray_local, small_dataset, tmp_path, capsys):
    """An actor that cannot load its encoder (here: weights missing on the workers) fails the run
    with the worker's own error, on one line."""
    missing = tmp_path / "missing.pth"
    argv = ["index", str(small_dataset), "--features", str(tmp_path / "features"), "--ray", "--weights", str(missing)]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: the Ray pipeline failed: ") and err.count("\n") == 1
    assert err.rstrip().endswith(f"efficientnet-lite0 weights not found: {missing}")
