"""What a joint method is fitted on (`TrainingData`), and the stratified split that chose it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from vector_search.text.sentence_encoder import SentenceEncoder
from vector_search.text.words import WordVectors

Progress = Callable[[int, dict], None]  # (epoch, {"loss": ..., "val_loss": ...})


@dataclass(frozen=True)
class TrainingData:
    """The train part of a labelled photo set, as every method's `fit` receives it.

    The test part never reaches a method, nor do its photos' captions: `train()` has already split
    them off.
    """

    features: np.ndarray  # (n, feature dim) float32 image features
    labels: np.ndarray  # (n,) class positions into `targets`
    targets: np.ndarray  # (c, word dim) class word vectors (targets.class_vectors)
    words: WordVectors
    imagenet_classifier: tuple[np.ndarray, np.ndarray] | None  # the encoder's (W, b), if it has one
    seed: int
    epochs: int
    verbose: int = 0
    progress: Progress | None = None
    captions: Sequence[Sequence[str]] | None = None  # each train photo's captions ([] for none), if the dataset has them
    sentences: SentenceEncoder | None = None  # the sentence encoder, for a method in its space


def split(labels: Sequence[str] | np.ndarray, test_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) positions; `test_size` a fraction or a count; no test when 0."""
    positions = np.arange(len(labels))
    if test_size == 0:
        return positions, positions[:0]
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(positions, test_size=test_size, stratify=np.asarray(labels), random_state=seed)
    return np.sort(train), np.sort(test)
