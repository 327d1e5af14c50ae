"""Learning from captions (datasets.read_captions, joint/captions.py, Engine.train) on real photos
and their real Pascal Sentences captions."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PASCAL, copy_subset

from vector_search import joint
from vector_search.datasets.pascal import default_captions_dir, read_captions, store_captions
from vector_search.engine import Engine
from vector_search.joint import JointModel, ModelMismatchError

pytestmark = pytest.mark.slow
SUBSET = {"aeroplane": 10, "bus": 10, "cat": 10}
NO_CAPTION = "cat"  # the first photo of this class gets no caption file


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> tuple[Engine, Path]:
    """30 real photos with their real caption files (one photo without), indexed with Lite0."""
    base = tmp_path_factory.mktemp("captioned")
    dataset = copy_subset(base / "dataset", SUBSET)
    for photo in dataset.rglob("*.jpg"):
        (base / "sentence" / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(PASCAL / "sentence" / photo.parent.name / f"{photo.stem}.txt", base / "sentence" / photo.parent.name)
    (base / "sentence" / NO_CAPTION / f"{sorted((dataset / NO_CAPTION).iterdir())[0].stem}.txt").unlink()
    engine = Engine(base / "features")
    engine.index(dataset)
    return engine, base


def test_captions_are_discovered_beside_the_dataset(indexed: tuple[Engine, Path]) -> None:
    engine, base = indexed
    assert default_captions_dir(base / "dataset") == base / "sentence"
    assert default_captions_dir(base / "dataset" / "cat") is None  # no dataset/sentence folder
    items = [item.path for item in engine.store.items]
    captions = store_captions(engine.store)
    assert len(captions) == len(items) == 30
    missing = [item for item, lines in zip(items, captions) if not lines]
    assert missing == [f"{NO_CAPTION}/{sorted((base / 'dataset' / NO_CAPTION).iterdir())[0].name}"]
    first = items.index("aeroplane/" + sorted((base / "dataset" / "aeroplane").iterdir())[0].name)
    expected = (PASCAL / "sentence" / Path(items[first]).with_suffix(".txt")).read_text().splitlines()
    assert captions[first] == [line.strip() for line in expected if line.strip()]
    assert store_captions(engine.store, False) is None


def test_a_bad_caption_file_costs_only_its_photo(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "a.txt").write_bytes(b"A cat on a mat.\n\n  A grey cat \xff.\n")
    (tmp_path / "cat" / "b.txt").mkdir()  # unreadable as a file
    found, problems = read_captions(tmp_path, ["cat/a.jpg", "cat/b.jpg", "cat/c.jpg"])
    assert found == [["A cat on a mat.", "A grey cat \ufffd."], [], []]
    assert len(problems) == 1 and "b.txt" in problems[0]
    with pytest.raises(FileNotFoundError, match="no captions folder"):
        read_captions(tmp_path / "nowhere", ["cat/a.jpg"])


def test_held_out_photos_and_all_their_captions_are_never_trained_on(indexed: tuple[Engine, Path], tmp_glove) -> None:
    engine, _ = indexed
    store, captions = engine.store, store_captions(engine.store)
    model = engine.train(text="glove")  # captions found: the GloVe captions method
    assert model.method == "captions"
    test = set(model.meta["split"]["test"])
    train_rows = [i for i in range(len(captions)) if i not in test]
    assert model.meta["captions"]["photos"] == sum(1 for i in train_rows if captions[i])
    assert model.meta["captions"]["captions"] == sum(len(captions[i]) for i in train_rows)
    assert any(captions[i] for i in test)  # the test part had captions, and they were left out

    def fit(caption_lists):
        return joint.train(store.vectors, store.classes, tmp_glove, method="captions", encoder=store.encoder,
                           imagenet_classifier=engine.encoder.classifier(), captions=caption_lists)

    swapped = [["a red tractor ploughing a muddy field"] if i in test else lines for i, lines in enumerate(captions)]
    np.testing.assert_array_equal(fit(captions).arrays["captions.w"], fit(swapped).arrays["captions.w"])
    changed = [["a red tractor ploughing a muddy field"] if i == train_rows[0] else lines for i, lines in enumerate(captions)]
    assert not np.array_equal(fit(captions).arrays["captions.w"], fit(changed).arrays["captions.w"])


def test_saved_caption_model_loads_and_refuses_a_mismatched_store(indexed: tuple[Engine, Path]) -> None:
    engine, base = indexed
    model = engine.train(text="glove")
    path = engine.joint_model_path()
    loaded = JointModel.load(path, encoder=engine.store.encoder, words=engine.words)
    assert loaded.method == "captions"
    np.testing.assert_allclose(loaded.transform(engine.store.vectors), model.transform(engine.store.vectors), rtol=1e-6)
    assert not np.allclose(loaded.transform(engine.store.vectors), loaded.tag_vectors(engine.store.vectors))
    with pytest.raises(ModelMismatchError, match="efficientnet-lite0 features, not vgg16"):
        JointModel.load(path, encoder="vgg16", words=engine.words)
    with pytest.raises(ModelMismatchError, match="expects 1280-d features"):
        loaded.transform(np.ones((2, 512), np.float32))

    assert "plane" in [w.word for w in engine.search_text("A big plane on the runway.")[1].words]
    hits = engine.search("A big plane parked on the runway.", k=5)
    assert sum(Path(r.item).parent.name == "aeroplane" for r in hits) >= 4, hits


def test_without_captions_training_works_as_before(indexed: tuple[Engine, Path]) -> None:
    engine, _ = indexed
    model = engine.train(captions=False, text="glove")
    assert model.method == "blend" and "captions" not in model.meta
    with pytest.raises(ValueError, match="needs the photos' captions"):
        engine.train(method="captions", captions=False)
