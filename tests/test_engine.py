"""The engine's state: what it loaded from a store is one object, replaced whole when the store or
the model changes; re-weighting by ImageNet class id. Real photos, real weights."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import PHOTOS, copy_subset

from vector_search.engine import Engine, Loaded, loaded_once
from vector_search.imaging.imagenet import ClassNameError, class_names
from vector_search.search.calibration import Calibration
from vector_search.search.index import exact_index
from vector_search.store.projection import store_map
from vector_search.text import query


class CountingLoaded(Loaded):
    """A derived part the engine knows nothing about: the photos per class of the store."""

    @loaded_once
    def per_class(self) -> dict[str, int]:
        return {c: self.store.classes.count(c) for c in sorted(set(self.store.classes))}


class CountingEngine(Engine):
    loaded_type = CountingLoaded


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """8 real photos (the committed 4 cats, 4 cups) indexed once; tests that change the photos copy them first."""
    base = tmp_path_factory.mktemp("engine")
    dataset = copy_subset(base / "photos", {"cat": 4, "cup": 4}, source=PHOTOS)
    Engine(base / "features").index(dataset)
    return dataset, base / "features"


def test_a_new_derived_part_is_refreshed_after_reindexing(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    dataset, store = indexed
    photos, features = tmp_path / "photos", tmp_path / "features"
    shutil.copytree(dataset, photos)
    shutil.copytree(store, features)
    engine = CountingEngine(features)
    assert engine.loaded.per_class == {"cat": 4, "cup": 4}
    first = engine.loaded

    copy_subset(photos, {"rocket": 3}, source=PHOTOS)
    (photos / "cup" / sorted(p.name for p in (photos / "cup").iterdir())[0]).unlink()
    report = engine.index(photos)
    assert len(report.added) == 3 and len(report.removed) == 1
    assert engine.loaded is not first and engine.loaded.per_class == {"cat": 4, "cup": 3, "rocket": 3}
    assert len(engine.images.vectors) == len(engine.store) == 10
    assert first.per_class == {"cat": 4, "cup": 4}  # a query that began before the re-index sees one store


def test_index_saves_the_image_scores_calibration_for_the_store_it_made(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    """`index` saves what scores similar photos with the store; a fresh engine reads it (nothing computed),
    and a re-index that changes the rows saves the new one."""
    dataset, store = indexed
    photos, features = tmp_path / "photos", tmp_path / "features"
    shutil.copytree(dataset, photos)
    shutil.copytree(store, features)
    engine = Engine(features)
    made = Calibration.of_rows(engine.images.vectors, live=engine.store.live)
    saved = engine.store.directory / "images.scores.npy"
    assert saved.is_file() and np.array_equal(np.load(saved), made.null)
    assert np.array_equal(engine.current().image_scores.null, made.null)  # read back, the same quantiles

    copy_subset(photos, {"rocket": 3}, source=PHOTOS)
    engine.index(photos)
    fresh = Engine(features)
    remade = Calibration.of_rows(fresh.images.vectors, live=fresh.store.live)
    assert not np.array_equal(remade.null, made.null) and np.array_equal(np.load(saved), remade.null)


def test_joint_model_path_does_not_depend_on_what_was_loaded(indexed: tuple[Path, Path], models_dir: Path) -> None:
    _, store = indexed
    engine = Engine(store)
    before = engine.joint_model_path()
    _ = engine.store  # loaded now: the path must not change
    assert engine.joint_model_path() == before == models_dir / "joint-efficientnet-lite0.npz"
    assert engine.encoder_name is None  # what was asked stays what was asked


def test_reweight_by_class_id_tells_the_two_cranes_apart(indexed: tuple[Path, Path]) -> None:
    dataset, store = indexed
    engine = Engine(store)
    classifier = engine.encoder.classifier()
    machine = engine.class_weights(517)
    np.testing.assert_array_equal(machine, query.class_weights(classifier[0], 517))
    assert not np.array_equal(machine, engine.class_weights(134))  # the bird
    np.testing.assert_array_equal(engine.class_weights("517"), machine)

    photo = str(sorted((dataset / "cup").iterdir())[0])
    ranked = exact_index(query.reweight(engine.store.vectors, machine))
    ids, _ = ranked.search(query.reweight(engine.store.vectors[engine.store.find(photo)], machine), 4)
    want = [engine.store.paths[i] for i in ids if engine.store.paths[i] != photo][:3]
    assert [r.item for r in engine.similar_images(photo, 3, reweight=517)] == want

    with pytest.raises(ClassNameError) as err:
        engine.similar_images(photo, 3, reweight="crane")
    assert f"134 ({class_names()[134]})" in str(err.value) and f"517 ({class_names()[517]})" in str(err.value)


def test_an_engine_loads_no_model_for_indexed_photos(indexed: tuple[Path, Path]) -> None:
    """A photo whose saved vector is current needs no encoder: none is loaded."""
    dataset, store = indexed
    engine = Engine(store)
    cat = str(sorted((dataset / "cat").iterdir())[0])
    assert [Path(r.item).parent.name for r in engine.similar_images(cat, 3)] == ["cat"] * 3
    assert not [key for key in engine._parts if key.startswith("encoder:")]


def test_a_store_saved_by_another_process_is_picked_up_only_when_complete(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    """Another writer's checkpoints (complete=False) leave readers on the last complete state; its
    final save replaces what they loaded, whole."""
    from vector_search.store.store import Store

    _, store = indexed
    features = tmp_path / "features"
    shutil.copytree(store, features)
    engine = Engine(features)
    first = engine.current()
    assert len(first.store) == 8

    writer = Store.load(first.store.directory)  # what another process would hold
    writer.items, writer.vectors = writer.items[:5], writer.vectors[:5]
    writer.save(complete=False)  # a checkpoint of a run still indexing
    assert engine.current() is first and len(engine.store) == 8

    writer.save()  # the run finished
    assert engine.current() is not first and len(engine.store) == 5


def test_the_map_of_a_small_store_plots_every_photo(indexed: tuple[Path, Path]) -> None:
    _, store = indexed
    shown = Engine(store).image_map()
    assert shown.rows.tolist() == list(range(8)) and shown.total == 8
    assert shown.points.shape == (8, 2) and np.isfinite(shown.points).all()


def test_the_map_of_a_store_bigger_than_its_sample_is_a_fixed_seeded_sample(indexed: tuple[Path, Path], tmp_path: Path) -> None:
    _, store = indexed
    features = tmp_path / "features"
    shutil.copytree(store, features)
    shown = store_map(Engine(features).store, size=6)  # what the engine computes, at a sample size below 8
    assert len(shown.rows) == 6 and shown.points.shape == (6, 2) and shown.total == 8
    classes = Engine(features).store.classes
    assert sorted(classes[i] for i in shown.rows) == ["cat"] * 3 + ["cup"] * 3  # stratified by class
    saved = Engine(features).store.load_array("map", method="tsne", sample=6, seed=0)  # row-aligned, NaN off the map
    assert saved is not None and np.isnan(saved).any(axis=1).tolist() == [i not in shown.rows for i in range(8)]
    np.testing.assert_array_equal(saved[shown.rows], shown.points)
    again = store_map(Engine(features).store, size=6)  # a fresh store object: loaded from the saved map
    np.testing.assert_array_equal(again.rows, shown.rows)
    np.testing.assert_array_equal(again.points, shown.points)
    (features / "efficientnet-lite0" / "map.npy").unlink()
    recomputed = store_map(Engine(features).store, size=6)  # seeded: the same sample, the same t-SNE
    np.testing.assert_array_equal(recomputed.rows, shown.rows)
    np.testing.assert_allclose(recomputed.points, shown.points, atol=1e-4)


def test_two_parts_load_side_by_side_and_each_only_once(tmp_path: Path) -> None:
    """A thread loading one part never waits for another part's load (each waits here for the
    other to have started: under one lock for all parts this would time out); a part asked for
    by several threads at once is made once."""
    started = {"a": threading.Event(), "b": threading.Event()}
    made: list[str] = []

    class Parts(Loaded):
        @loaded_once
        def a(self) -> str:
            made.append("a")
            started["a"].set()
            return "A" if started["b"].wait(20) else "timed out"

        @loaded_once
        def b(self) -> str:
            made.append("b")
            started["b"].set()
            return "B" if started["a"].wait(20) else "timed out"

    loaded, got = Parts(Engine(tmp_path)), []
    threads = [threading.Thread(target=lambda name=name: got.append(getattr(loaded, name))) for name in "aaab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == ["A", "A", "A", "B"] and sorted(made) == ["a", "b"]


@pytest.mark.slow
def test_index_trains_the_default_model_once_on_class_folders(fixture_dataset: Path, tmp_path: Path, pascal_dataset: Path) -> None:
    """No train step: `index` on class folders with no joint model trains the default one (saying so);
    a second index, train=False, or too few photos a class for its 80/20 split (4 of 3 classes) do not."""
    engine = Engine(tmp_path / "features")
    report = engine.index(copy_subset(tmp_path / "photos", {"cat": 5, "bus": 5}))
    assert any(note.startswith("trained the default joint model") for note in report.notes)
    assert engine.joint_model_path().is_file() and engine.joint.method != "conse"
    assert not any("trained" in note for note in engine.index(tmp_path / "photos").notes)
    for store, dataset, train in (("other", tmp_path / "photos", False), ("few", fixture_dataset, True)):
        other = Engine(tmp_path / store, model_path=tmp_path / f"{store}.npz")
        assert not any("trained" in note for note in other.index(dataset, train=train).notes)
