"""`train()`: validate the labelled features, split off a test part, fit with the chosen method.

Images of held-out classes are dropped entirely (to measure zero-shot search); the rest is split
stratified into train and test, and the test positions are recorded in the model so evaluation
can reuse them: nothing is fitted on them. ConSE trains nothing (`conse_model`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np

from vector_search.joint import methods, sentence
from vector_search.joint.conse import CONSE_TOP, imagenet_arrays
from vector_search.joint.data import Progress, TrainingData, split
from vector_search.joint.errors import TrainingError
from vector_search.joint.model import JointModel, words_identity
from vector_search.joint.targets import HYPERNYM_DECAY, HYPERNYM_DEPTH
from vector_search.text.sentence_encoder import IDENTITY, SentenceEncoder
from vector_search.text.vocab import FREQUENT_WORDS, class_vectors
from vector_search.text.words import WordVectors


def train(
    features: np.ndarray,
    labels: Sequence[str],
    words: WordVectors,
    *,
    method: str = methods.DEFAULT_METHOD,
    encoder: str,
    imagenet_classifier: tuple[np.ndarray, np.ndarray] | None = None,
    exclude_classes: Sequence[str] = (),
    test_size: float = 0.2,
    seed: int = 0,
    epochs: int = 50,
    items: Sequence[str] | None = None,
    captions: Sequence[Sequence[str]] | None = None,
    verbose: int = 0,
    progress: Progress | None = None,
    settings: methods.Settings | None = None,
    sentences: SentenceEncoder | None = None,
) -> JointModel:
    """Fit a joint model on (n, d) features with one class name per row.

    Images of `exclude_classes` are dropped; the rest is split stratified (`test_size`, `seed`)
    and the test positions (and their `items` names, if given) are recorded. The hybrid calls
    `progress(epoch, {"loss", "val_loss"})` after each epoch; `imagenet_classifier` (the
    encoder's W, b) is needed by "blend", "captions" and "conse". `captions` (a list per row, []
    for none) are used by "captions" and "sentence": only the training photos' are passed on. `settings`: the
    method's (blend.BlendSettings, hybrid.HybridSettings, captions.CaptionSettings, sentence.SentenceSettings);
    None: its defaults. `sentences` (the sentence encoder) is needed by a method in its space ("sentence").
    """
    fit, text = methods.get(method).fit, methods.get(method).text
    features, labels = _checked(features, labels)
    if text == "minilm" and sentences is None:
        raise TrainingError(f"the {method} method needs the sentence encoder")
    if fit is None:  # ConSE: assembled from the encoder's classifier, nothing to fit
        return conse_model(imagenet_classifier, words, encoder)  # type: ignore[arg-type]

    keep, classes = _kept(labels, exclude_classes, test_size)
    targets = class_vectors(classes, words) if text == "glove" else sentence.class_prompt_vectors(classes, sentences)  # type: ignore[arg-type]
    train_pos, test_pos = split(labels[keep], test_size, seed)
    test = keep[test_pos]
    meta = _base_meta(method, encoder, features.shape[1], words, sentences if text == "minilm" else None)
    meta.update(
        classes=classes,
        held_out_classes=sorted(set(exclude_classes)),
        split={"seed": seed, "test_size": test_size, "test": test.tolist()},
    )
    if items is not None:
        meta["split"]["test_items"] = [items[i] for i in test]

    start = time.perf_counter()
    fitted = keep[train_pos]
    assert not np.isin(fitted, test).any(), "a held-out photo would be trained on"
    if captions is not None and len(captions) != len(features):
        raise TrainingError(f"{len(captions)} caption lists for {len(features)} photos")
    data = TrainingData(
        features[fitted], np.searchsorted(classes, labels[fitted]), targets, words, imagenet_classifier,
        seed, epochs, verbose, progress, None if captions is None else [captions[i] for i in fitted], sentences,
    )
    arrays, fitted_meta = fit(data) if settings is None else fit(data, settings)
    meta.update(fitted_meta)
    meta["train_seconds"] = round(time.perf_counter() - start, 2)
    return JointModel(meta, {"class_vectors": targets, **arrays})


def conse_model(
    imagenet_classifier: tuple[np.ndarray, np.ndarray] | Callable[[], tuple[np.ndarray, np.ndarray]],
    words: WordVectors | None,
    encoder: str,
    sentences: SentenceEncoder | Callable[[], SentenceEncoder] | None = None,
    dim: int | None = None,
) -> JointModel:
    """The untrained ConSE model for an encoder's ImageNet classifier: in the sentence encoder's
    space if `sentences` is given (what a folder with no classes and no captions gets; `words` unused,
    may be None), else GloVe's. `imagenet_classifier` (and `sentences`) may be a function returning it, with
    `dim` (the features' dimension): the model's arrays (the classifier, the label vectors) are then made at
    its first use (JointModel.arrays), so a text query, which maps no photo, never makes them."""

    def arrays() -> dict[str, np.ndarray]:
        classifier = imagenet_classifier() if callable(imagenet_classifier) else imagenet_classifier
        if sentences is not None:
            return sentence.conse_arrays(classifier, sentences() if callable(sentences) else sentences, dim)  # type: ignore[arg-type]
        return imagenet_arrays(classifier, words, dim)  # type: ignore[arg-type]

    if dim is None:
        dim = int(np.shape(imagenet_classifier[0])[0])  # type: ignore[index]
    meta = dict(_base_meta("conse", encoder, dim, words, sentences), classes=[], held_out_classes=[])
    return JointModel(meta, arrays if callable(imagenet_classifier) else arrays())


def _checked(features: np.ndarray, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Float32 (n, d) features and n string labels; ValueError if they do not pair up."""
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels, dtype=str)
    if features.ndim != 2 or len(features) != len(labels):
        raise TrainingError(f"need (n, d) features and n labels, got {features.shape} and {len(labels)}")
    return features, labels


def _kept(labels: np.ndarray, exclude_classes: Sequence[str], test_size: float) -> tuple[np.ndarray, list[str]]:
    """Positions of the photos outside `exclude_classes`, and their sorted classes; ValueError if
    they are too few to train on or to hold out a stratified test part (sklearn's rule)."""
    keep = np.flatnonzero(~np.isin(labels, list(exclude_classes)))
    classes = sorted(set(labels[keep].tolist()))
    if len(classes) < 2:
        raise TrainingError(f"need at least 2 classes to train, got {classes}")
    counts = np.unique(labels[keep], return_counts=True)[1]
    if test_size and (counts.min() < 2 or np.ceil(test_size * len(keep)) < len(classes)):
        raise TrainingError(
            f"too few photos to hold out a stratified {test_size:.0%} test split: {len(keep)} photos in "
            f"{len(classes)} classes (at least 2 per class and {int(np.floor((len(classes) - 1) / test_size)) + 1} in all)"
        )
    return keep, classes


def _base_meta(method: str, encoder: str, feature_dim: int, words: WordVectors | None, sentences: SentenceEncoder | None = None) -> dict[str, Any]:
    """What every model's sidecar records, whatever its method; `sentences`: the model lives in its space."""
    return {
        "method": method,
        "encoder": encoder,
        "feature_dim": int(feature_dim),
        "text": "glove" if sentences is None else "minilm",
        "words": words_identity(words) if sentences is None else IDENTITY,
        "conse_top": CONSE_TOP if sentences is None else sentence.CONSE_TOP,
        "hypernyms": {"decay": HYPERNYM_DECAY, "depth": HYPERNYM_DEPTH} if sentences is None else {"decay": sentence.HYPERNYM_DECAY, "depth": sentence.HYPERNYM_DEPTH},
        "frequent_words": FREQUENT_WORDS,
    }
