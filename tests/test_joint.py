"""The joint package: ConSE, the hybrid and the blend on real GloVe and real Lite0 features of real photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vector_search import joint
from vector_search.evaluation.evaluate import text_to_image
from vector_search.imaging.imagenet import find_class
from vector_search.imaging.images import find_images, load_image
from vector_search.joint.conse import convex_combination
from vector_search.search.vectors import normalize
from vector_search.text.vocab import FREQUENT_WORDS, class_vectors
from vector_search.text.words import WordVectors

CLASSES = ("aeroplane", "boat", "cat", "dog", "dining_table")  # 10 photos each


@pytest.fixture(scope="module")
def words(tmp_glove: WordVectors) -> WordVectors:
    return tmp_glove  # the session's GloVe (conftest), cached in a temp folder


@pytest.fixture(scope="module")
def encoder(lite0):
    return lite0  # the session's Lite0 (conftest)


@pytest.fixture(scope="module")
def photos(pascal_dataset: Path, encoder) -> tuple[np.ndarray, np.ndarray]:
    """Lite0 features and labels of the first 10 photos of each class in CLASSES."""
    paths = [p for p in find_images(pascal_dataset)[0] if p.split("/")[0] in CLASSES]
    chosen = [p for c in CLASSES for p in [q for q in paths if q.startswith(c + "/")][:10]]
    batch = np.stack([encoder.preprocess(load_image(pascal_dataset / p)) for p in chosen])
    return encoder.embed(batch), np.array([p.split("/")[0] for p in chosen])


def train(photos, words, encoder, method: str, **kwargs) -> joint.JointModel:
    features, labels = photos
    return joint.train(
        features, labels, words, method=method, encoder=encoder.name, imagenet_classifier=encoder.classifier(), **kwargs
    )


# --- word targets, ConSE parts, tags: no image model needed ----------------------------------------


def test_class_vector_is_the_mean_of_its_words(words: WordVectors) -> None:
    got = class_vectors(["dining_table", "cat"], words)
    np.testing.assert_allclose(got[0], (words.vector("dining") + words.vector("table")) / 2, rtol=1e-6)
    np.testing.assert_allclose(got[1], words.vector("cat"), rtol=1e-6)
    with pytest.raises(ValueError, match="no word"):
        class_vectors(["qqzxv_wwqxz"], words)


def test_imagenet_label_vectors_use_head_words(words: WordVectors) -> None:
    labels = joint.imagenet_label_vectors(words, depth=0)  # the class's own names only
    assert labels.shape == (1000, words.dim)
    # "tiger cat" -> cat; "tabby, tabby cat" -> cat (tabby is rarer than FREQUENT_WORDS); "Siamese cat, Siamese"
    cat, siamese = normalize(words.vector("cat")), normalize(words.vector("cat") + words.vector("siamese"))
    np.testing.assert_allclose(labels[find_class("tiger cat")], cat, rtol=1e-5)
    np.testing.assert_allclose(labels[find_class("tabby")], cat, rtol=1e-5)
    np.testing.assert_allclose(labels[find_class("Siamese cat")], siamese, rtol=1e-5, atol=1e-6)
    assert 700 < np.count_nonzero(np.any(labels != 0, axis=1)) < 1000  # some classes have no frequent word


def test_imagenet_label_vectors_add_wordnet_ancestors(words: WordVectors) -> None:
    own, labels = joint.imagenet_label_vectors(words, depth=0), joint.imagenet_label_vectors(words)

    def cosine(row: np.ndarray, word: str) -> float:
        return float(normalize(row) @ normalize(words.vector(word)))

    # no breed's name says "dog"; "sporting dog" two steps up does
    retriever = find_class("golden retriever")
    assert cosine(labels[retriever], "dog") > cosine(own[retriever], "dog") + 0.1
    # "moped" is no frequent word; its parent "minibike, motorbike" is
    moped = find_class("moped")
    assert not own[moped].any() and cosine(labels[moped], "motorbike") > 0.9
    assert np.count_nonzero(np.any(labels != 0, axis=1)) > 980


def test_label_vectors_are_cached_on_the_words_fingerprint_not_the_object(words: WordVectors) -> None:
    import gc
    import weakref

    first = joint.imagenet_label_vectors(words)
    twin = WordVectors(words.words, words.vectors, words.name, fingerprint=words.fingerprint)  # the same vectors loaded again
    assert joint.imagenet_label_vectors(twin) is first and joint.imagenet_label_vectors(twin, depth=0) is not first
    gone = weakref.ref(twin)
    del twin
    gc.collect()
    assert gone() is None  # the cache keeps no reference to a 400k-word object


def test_method_settings_are_frozen_values_with_the_tuned_defaults() -> None:
    blend = joint.BlendSettings()
    assert (blend.classifier_c, blend.top_classes, blend.alpha, blend.gamma) == (0.03, 3, 1.0, 1.0)
    assert joint.CaptionSettings().blend == blend and joint.HybridSettings().hidden == 2000
    with pytest.raises(AttributeError):
        blend.alpha = 2.0  # type: ignore[misc]


def test_convex_combination_skips_labels_without_words() -> None:
    labels = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0]], np.float32)
    probs = np.array([[0.2, 0.7, 0.1]])  # the most probable label has no vector
    got = convex_combination(probs, labels, top=2)
    np.testing.assert_allclose(got, normalize(np.array([[0.2, 0.1]])), rtol=1e-6)


def test_tag_filter_rule() -> None:
    assert all(joint.is_tag_word(w) for w in ("cat", "dining", "sofa", "café"))
    # stop word, too short, digits, punctuation, mixed, underscore
    assert not any(joint.is_tag_word(w) for w in ("the", "which", "tv", "a", "1990", "u.s.", "mp3", "e-mail", "a_b", "'s"))


def test_tag_vocabulary_and_tags(words: WordVectors) -> None:
    vocab = joint.tag_vocabulary(words)
    assert 40_000 < len(vocab.words) < FREQUENT_WORDS
    assert all(joint.is_tag_word(w) for w in vocab.words)
    assert {"aeroplane", "potted", "sofa"} <= set(vocab.words) and "the" not in vocab.words
    found = joint.tags(np.stack([words.vector("cat"), words.vector("sofa")]), vocab, k=5)
    assert [w for w, _ in found[0]][0] == "cat" and [w for w, _ in found[1]][0] == "sofa"
    assert found[0][0][1] == pytest.approx(0.0, abs=1e-5) and found[0][1][1] > found[0][0][1]


def test_unknown_method_is_a_clear_error(words: WordVectors, encoder, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown joint method 'nope'; choose one of blend, hybrid, conse"):
        joint.train(np.zeros((4, 1280), np.float32), ["a", "a", "b", "b"], words, method="nope", encoder=encoder.name)
    path = tmp_path / "joint.npz"
    joint.conse_model(encoder.classifier(), words, encoder.name).save(path)
    rewrite_meta(path, method="nope")  # the weights' hash still matches
    with pytest.raises(joint.ModelMismatchError, match="names joint method 'nope', not one of blend, hybrid, conse"):
        joint.JointModel.load(path)


# --- real photos ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_conse_tags_chelsea_as_a_cat(words: WordVectors, encoder) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    features = encoder.embed(encoder.preprocess(Image.fromarray(skimage_data.chelsea()))[None])
    model = joint.conse_model(encoder.classifier(), words, encoder.name)
    found = [w for w, _ in joint.tags(model.transform(features), joint.tag_vocabulary(words), k=5)[0]]
    assert "cat" in found, found


@pytest.mark.slow
def test_conse_finds_photos_by_words_without_training(photos, words: WordVectors, encoder) -> None:
    features, labels = photos
    vectors = joint.conse_model(encoder.classifier(), words, encoder.name).transform(features)
    found = text_to_image(class_vectors(list(CLASSES), words), list(CLASSES), vectors, labels, k=10)["per_class"]
    # the dogs are found through WordNet ("sporting dog" -> dog): 0.2 with the breeds' own names only
    assert found["dog"] >= 0.5
    assert np.mean(list(found.values())) >= 0.65, found


@pytest.mark.slow
@pytest.mark.parametrize("method", ["hybrid", "blend"])
def test_training_on_real_photos_converges(photos, words: WordVectors, encoder, method: str) -> None:
    features, labels = photos
    epochs: list[int] = []
    model = train(photos, words, encoder, method, progress=lambda epoch, logs: epochs.append(epoch))
    assert model.classes == sorted(CLASSES)
    assert epochs == (list(range(1, 51)) if method == "hybrid" else [])
    test = np.array(model.meta["split"]["test"])
    assert len(test) == 10 and sorted(labels[test].tolist()) == sorted(CLASSES * 2)  # stratified 20%
    vectors = model.transform(features)
    assert vectors.shape == (50, words.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

    # held-out photos are closer to their own class's word vector than to the others' (chance: 1/5)
    targets = normalize(class_vectors(model.classes, words))
    predicted = np.argmax(vectors[test] @ targets.T, axis=1)
    assert np.mean(np.array(model.classes)[predicted] == labels[test]) >= 0.6
    if method == "hybrid":  # the validation cosine rose from ~0 (chance) to well above it
        val_cosine = -np.array(model.meta["history"]["val_loss"])
        assert val_cosine[0] < 0.1 and val_cosine.max() > 0.4

    # each trained class's words retrieve its photos (chance: 0.2)
    queries = class_vectors(list(CLASSES), words)
    assert text_to_image(queries, list(CLASSES), vectors, labels, k=10)["mean_precision_at_k"] >= 0.7


@pytest.mark.slow
def test_settings_passed_in_are_used_and_recorded(photos, words: WordVectors, encoder) -> None:
    settings = joint.BlendSettings(top_classes=1, alpha=0.0)  # the dataset classifier alone, its best class only
    default, sharp = train(photos, words, encoder, "blend"), train(photos, words, encoder, "blend", settings=settings)
    assert sharp.meta["settings"] == {"classifier_c": 0.03, "top_classes": 1, "alpha": 0.0, "gamma": 1.0}
    assert default.meta["settings"]["top_classes"] == 3 and joint.BlendSettings().top_classes == 3  # nothing changed in place
    vectors, targets = sharp.transform(photos[0]), normalize(class_vectors(sharp.classes, words))
    assert np.allclose(np.max(vectors @ targets.T, axis=1), 1.0, atol=1e-5)  # each photo sits on one class word
    assert not np.allclose(default.transform(photos[0]), vectors)


@pytest.mark.slow
def test_hybrid_numpy_forward_matches_keras(photos, words: WordVectors, encoder) -> None:
    import keras

    features, _ = photos
    model = train(photos, words, encoder, "hybrid", epochs=3)
    a = model.arrays
    inputs = keras.Input((features.shape[1],))
    h = keras.layers.Dense(2000, name="dense1")(inputs)
    h = keras.layers.BatchNormalization(name="bn1")(h)
    h = keras.layers.Activation("relu")(h)
    h = keras.layers.Dense(words.dim, name="dense2")(h)
    out = keras.layers.BatchNormalization(name="bn2")(h)
    net = keras.Model(inputs, out)
    for name in ("dense1", "bn1", "dense2", "bn2"):
        layer = net.get_layer(name)
        layer.set_weights([a[f"{name}.{v.name}"] for v in layer.weights])
    expected = normalize(net.predict(features, verbose=0))
    np.testing.assert_allclose(model.transform(features), expected, atol=1e-4)


@pytest.mark.slow
def test_save_load_round_trip_and_errors(photos, words: WordVectors, encoder, tmp_path: Path) -> None:
    features, labels = photos
    model = train(photos, words, encoder, "blend", items=[f"{c}/{i}" for i, c in enumerate(labels)])
    path = tmp_path / "models" / "joint.npz"
    model.save(path)
    meta = json.loads(joint.sidecar(path).read_text())
    assert meta["encoder"] == "efficientnet-lite0" and meta["feature_dim"] == 1280
    assert meta["words"]["name"] == words.name and meta["words"]["dim"] == words.dim
    assert meta["method"] == "blend" and meta["classes"] == sorted(CLASSES) and meta["split"]["seed"] == 0
    assert len(meta["split"]["test_items"]) == 10

    loaded = joint.JointModel.load(path, encoder="efficientnet-lite0", words=words)
    np.testing.assert_array_equal(loaded.transform(features), model.transform(features))

    with pytest.raises(joint.ModelMismatchError, match="vgg16"):
        joint.JointModel.load(path, encoder="vgg16")
    other = WordVectors(words.words[:1000], np.asarray(words.vectors[:1000]), "glove.small")
    with pytest.raises(joint.ModelMismatchError, match="glove.small"):
        joint.JointModel.load(path, words=other)
    with pytest.raises(joint.ModelMismatchError, match="1280-d"):
        loaded.transform(features[:, :512])

    with pytest.raises(joint.ModelNotFoundError, match="train"):
        joint.JointModel.load(tmp_path / "nothing.npz")
    assert isinstance(joint.ModelNotFoundError("x"), FileNotFoundError)

    joint.conse_model(encoder.classifier(), words, encoder.name).save(path)  # npz replaced, sidecar too
    joint.sidecar(path).write_text(json.dumps(meta))  # an old sidecar beside the new model (killed between renames): unused
    assert joint.JointModel.load(path).method == "conse"
    rewrite_meta(path, **meta)  # the old model's metadata inside the new weights
    with pytest.raises(joint.ModelMismatchError, match="other weights"):
        joint.JointModel.load(path)


def rewrite_meta(path: Path, **changes: object) -> None:
    """Change the metadata saved inside a model file (its __meta__ member), weights untouched."""
    with np.load(path) as saved:
        arrays = {name: saved[name] for name in saved.files}
    meta = {**json.loads(arrays.pop(joint.model.META).tobytes()), **changes}
    np.savez(path, **arrays, **{joint.model.META: np.frombuffer(json.dumps(meta).encode(), np.uint8)})


@pytest.mark.slow
def test_zero_shot_excludes_classes_entirely(photos, words: WordVectors, encoder) -> None:
    model = train(photos, words, encoder, "blend", exclude_classes=["cat"])
    assert "cat" not in model.classes and model.meta["held_out_classes"] == ["cat"]
    assert all(photos[1][i] != "cat" for i in model.meta["split"]["test"])


@pytest.mark.slow
def test_too_few_photos_is_a_clear_error(photos, words: WordVectors, encoder) -> None:
    features, labels = photos
    few = np.concatenate([np.flatnonzero(labels == c)[:2] for c in np.unique(labels)])  # 2 per class
    with pytest.raises(ValueError, match="too few photos to hold out a stratified 20% test split"):
        train((features[few], labels[few]), words, encoder, "blend")
