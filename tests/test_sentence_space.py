"""The joint space in the sentence encoder's space (joint/sentence.py), trained from what a folder
has: nothing (a flat folder), class folders, captions; on real photos, real captions, the real model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import PASCAL, PHOTOS, copy_subset
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from vector_search.datasets.gallery import PHOTOS as PHOTOS_OF_GALLERY
from vector_search.datasets.gallery import export_gallery, photo_path
from vector_search.engine import Engine
from vector_search.joint import JointModel, ModelMismatchError, conse_model
from vector_search.joint.sentence import CONSE_TOP, HYPERNYM_DECAY, HYPERNYM_DEPTH, imagenet_prompt_vectors, prompt
from vector_search.joint.tagging import OPEN_TAGS, TagVocabulary, is_tag_word, tags
from vector_search.text.sentence_encoder import sentence_encoder
from vector_search.text.vocab import STOP_WORDS

pytestmark = pytest.mark.slow
SUBSET = {"aeroplane": 8, "bus": 8, "cat": 8, "horse": 8}


def _classes(results) -> list[str]:
    return [Path(r.item).parent.name for r in results]


@pytest.fixture(scope="module")
def captioned(tmp_path_factory: pytest.TempPathFactory, pascal_dataset: Path) -> Engine:
    """32 real photos in class folders with their real caption files, indexed with Lite0."""
    base = tmp_path_factory.mktemp("sentence_space")
    dataset = copy_subset(base / "dataset", SUBSET)
    for photo in dataset.rglob("*.jpg"):
        (base / "sentence" / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(PASCAL / "sentence" / photo.parent.name / f"{photo.stem}.txt", base / "sentence" / photo.parent.name)
    engine = Engine(base / "features")
    engine.index(dataset)
    return engine


def test_a_flat_folder_is_searched_in_the_sentence_space(tmp_path: Path, pascal_dataset: Path) -> None:
    """Nothing to train on: no class folders, no captions. The untrained model is ConSE over ImageNet's
    classes in the sentence space; whole sentences and the grammar work."""
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in copy_subset(tmp_path / "classes", {"bus": 4, "cat": 4, "horse": 4}).rglob("*.jpg"):
        shutil.copy(photo, flat / f"{photo.parent.name}-{photo.name}")
    engine = Engine(tmp_path / "features")
    engine.index(flat)
    assert engine.joint.method == "conse" and engine.joint.text == "minilm"
    assert engine.joint_space.vectors.shape[1] == 384
    for query, wanted in [("a red double-decker bus in the street", "bus"), ("a horse in a field", "horse"), ("cat", "cat")]:
        top = [Path(r.item).name.split("-")[0] for r in engine.search(query, 4)]
        assert top.count(wanted) >= 3, (query, top)
    results, parsed = engine.search_text("2:cat + sofa - person", 4)
    assert [(w.word, w.weight) for w in parsed.words] == [("cat", 2.0), ("sofa", 1.0), ("person", -1.0)]
    assert len(results) == 4
    tags = [r.item for r in engine.tags(flat / sorted(p.name for p in flat.iterdir() if p.name.startswith("cat"))[0])]
    assert any("cat" in t.split() for t in tags), tags
    assert not any(word in STOP_WORDS or word in ENGLISH_STOP_WORDS for t in tags for word in t.split()), tags


def test_imagenet_classes_say_their_wordnet_parent() -> None:
    """A flat folder's ConSE: an ImageNet class's vector adds its WordNet parent's prompt, so the 118 dog
    breeds ("a photo of a Chihuahua") sit nearer "a photo of a dog" (and the cats, birds, cars likewise);
    the untrained model records the sentence space's settings."""
    encoder = sentence_encoder()
    own, with_parent = imagenet_prompt_vectors(encoder, depth=0), imagenet_prompt_vectors(encoder)
    for word, classes in [("dog", range(151, 269)), ("cat", range(281, 286)), ("bird", range(7, 25)), ("car", [436, 468, 511, 609, 627, 656, 705, 717, 751, 817])]:
        query = encoder.encode_one(prompt(word))
        assert (with_parent[list(classes)] @ query).mean() > (own[list(classes)] @ query).mean() + 0.05, word
    np.testing.assert_allclose(np.linalg.norm(with_parent, axis=1), 1.0, atol=1e-5)
    meta = conse_model((np.zeros((8, 1000), np.float32), np.zeros(1000, np.float32)), None, "lite0", encoder).meta
    assert meta["conse_top"] == CONSE_TOP and meta["hypernyms"] == {"depth": HYPERNYM_DEPTH, "decay": HYPERNYM_DECAY}


def test_class_folders_train_the_sentence_method_and_glove_stays_selectable(captioned: Engine) -> None:
    model = captioned.train(captions=False)
    assert model.method == "sentence" and model.text == "minilm" and "captions.w" not in model.arrays
    test = set(model.meta["split"]["test"])
    for name in SUBSET:
        assert _classes(captioned.search(name, 4)).count(name) >= 3, name
    loaded = JointModel.load(captioned.joint_model_path(), encoder=captioned.store.encoder, words=captioned.words)
    np.testing.assert_allclose(loaded.transform(captioned.store.vectors[:3]), model.transform(captioned.store.vectors[:3]), atol=1e-6)
    assert len(test) >= len(SUBSET)

    glove = captioned.train(captions=False, text="glove")
    assert glove.method == "blend" and glove.text == "glove" and captioned.joint.text == "glove"
    assert captioned.joint_space.vectors.shape[1] == 50
    assert _classes(captioned.search("horse", 4)).count("horse") >= 3


def test_captions_add_a_map_weighed_on_validation_photos(captioned: Engine) -> None:
    model = captioned.train()
    assert model.method == "sentence" and "captions.w" in model.arrays
    settings, validation = model.meta["settings"], model.meta["validation"]
    assert settings["caption_weight"] in map(float, validation["score_by_caption_weight"])
    test = set(model.meta["split"]["test"])
    trained_photos = len(captioned.store) - len(test)
    assert model.meta["captions"]["photos"] == trained_photos  # the held-out photos' captions never reach fit
    assert validation["photos"] < trained_photos  # chosen on a part of the training photos
    # a held-out photo's own caption finds photos of its class
    items = [item.path for item in captioned.store.items]
    row = sorted(test)[0]
    caption = (PASCAL / "sentence" / Path(items[row]).with_suffix(".txt")).read_text().splitlines()[0].replace("-", " ")
    label = Path(items[row]).parent.name
    assert _classes(captioned.search(caption, 4)).count(label) >= 2, caption
    others = sorted(PHOTOS.glob("*/*-1.jpg"))
    assert len(others) == 3
    for photo in [captioned.store.path(row), *others]:  # a Pascal photo, then a cat, a cup, a rocket
        tags = [r.item for r in captioned.tags(photo, 5)]
        assert all(all(is_tag_word(w) for w in t.split()) for t in tags), tags
        # no function word, by an independent list (scikit-learn's English stop words) as well as ours
        assert not any(w in ENGLISH_STOP_WORDS for t in tags for w in t.split()), tags


def test_tags_are_distinct_words() -> None:
    """A word closer than `distinct` to a tag chosen before it is no second tag ("airplane" after "aeroplane")."""
    encoder = sentence_encoder()
    words = ["aeroplane", "airplane", "aeroplanes", "plane", "aircraft", "jet", "runway", "sky", "boat", "cat"]
    units = encoder.encode_cached([prompt(w) for w in words])
    photo = encoder.encode_one(prompt("aeroplane on a runway"))[None]
    plain = [w for w, _ in tags(photo, TagVocabulary(words, units), 4)[0]]
    distinct = [w for w, _ in tags(photo, TagVocabulary(words, units, distinct=0.9), 4)[0]]
    assert plain[0] == distinct[0] == "aeroplane" and len(distinct) == 4
    chosen = units[[words.index(w) for w in distinct]]
    assert (chosen @ chosen.T)[np.triu_indices(4, 1)].max() <= 0.9
    assert plain != distinct, (plain, distinct)  # the plain list repeats a near-synonym


def test_tags_name_what_the_encoder_sees_where_the_classes_do_not_fit(captioned: Engine, tmp_path: Path) -> None:
    """The app gallery's rocket, to a model trained on aeroplanes, buses, cats and horses, is an aeroplane; where the
    tag vector and the encoder's ImageNet view disagree, the last OPEN_TAGS tags are the view's."""
    model = captioned.train(captions=False)
    vocabulary = captioned.tag_vocabulary(model.text, model.classes)
    export_gallery(tmp_path)
    rocket, cat = (captioned.image_vector(photo_path(tmp_path, next(p for p in PHOTOS_OF_GALLERY if p.name == name)))[0][None] for name in ("rocket", "chelsea"))
    own = [w for w, _ in tags(model.tag_vectors(rocket), vocabulary, 5)[0]]
    merged = [w for w, _ in model.tags(rocket, vocabulary, 5)[0]]
    assert not {"rocket", "missile"} & set(own), own
    assert {"rocket", "missile"} & set(merged[-OPEN_TAGS:]) and merged[: 5 - OPEN_TAGS] == own[: 5 - OPEN_TAGS], merged
    assert [w for w, _ in model.tags(cat, vocabulary, 5)[0]] == [w for w, _ in tags(model.tag_vectors(cat), vocabulary, 5)[0]]


def test_a_model_of_another_sentence_encoder_is_refused(captioned: Engine, tmp_path: Path) -> None:
    model = captioned.train(captions=False)
    model.meta["words"] = dict(model.meta["words"], fingerprint="0" * 16)
    model.save(tmp_path / "other.npz")
    with pytest.raises(ModelMismatchError, match="sentence encoder"):
        JointModel.load(tmp_path / "other.npz", words=captioned.words)


def test_a_text_query_does_not_make_the_untrained_models_image_side(tmp_path: Path, pascal_dataset: Path, lite0) -> None:
    """A text query on an indexed flat folder reads the joint files and encodes the query: the untrained
    ConSE's arrays (the Lite0 classifier, the ImageNet prompt bank) are made only when a photo is mapped,
    and the answers are those of the engine that made them, under the same model fingerprint."""
    flat = tmp_path / "flat"
    flat.mkdir()
    for photo in copy_subset(tmp_path / "classes", {"dog": 4, "bus": 4, "cat": 4}).rglob("*.jpg"):
        shutil.copy(photo, flat / f"{photo.parent.name}-{photo.name}")
    indexer = Engine(tmp_path / "features")
    indexer.index(flat)
    assert indexer.joint.arrays_made  # index mapped the photos
    before = indexer.search("a dog on the beach", 10)
    engine = Engine(tmp_path / "features")
    after = engine.search("a dog on the beach", 10)
    assert not engine.joint.arrays_made
    assert [(r.item, round(r.distance, 5), r.score) for r in after] == [(r.item, round(r.distance, 5), r.score) for r in before]
    eager = conse_model(lite0.classifier(), None, "efficientnet-lite0", sentence_encoder())
    assert engine.joint.fingerprint == eager.fingerprint == indexer.joint.fingerprint
    engine.tags(flat / sorted(flat.iterdir())[0].name)  # a photo mapped: now they are made, equal to the eager model's
    assert engine.joint.arrays_made
    assert sorted(engine.joint.arrays) == sorted(eager.arrays)
    for name, array in eager.arrays.items():
        np.testing.assert_array_equal(engine.joint.arrays[name], array)
