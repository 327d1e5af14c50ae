"""ConSE (no training; Norouzi et al. 2014, "Zero-shot learning by convex combination of semantic
embeddings"): a photo's joint vector is the probability-weighted mean of the word vectors of its
top ImageNet classes, from the encoder's own classifier.

A class's words are its names' and its WordNet ancestors' (targets.imagenet_label_vectors: a
golden retriever is also a "sporting dog", hence a dog). Open vocabulary, so strong zero-shot,
but weak on a dataset's own classes; the blend uses it as its fallback.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vector_search.joint.errors import TrainingError
from vector_search.joint.targets import imagenet_label_vectors
from vector_search.search.vectors import normalize
from vector_search.text.words import WordVectors

# How many ImageNet classes an image's vector mixes in GloVe's space (measured 10 vs 20: equal;
# the sentence space's is sentence.CONSE_TOP).
CONSE_TOP = 10


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def convex_combination(probs: np.ndarray, label_vectors: np.ndarray, top: int) -> np.ndarray:
    """(n, dim) unit vectors: sum of p * label vector over each row's `top` most probable labels.

    Labels whose vector is zero (no known word) are skipped, so they never take a top slot.
    """
    probs = np.where(np.any(label_vectors != 0, axis=1), probs, 0.0)
    top = min(top, probs.shape[1])
    best = np.argpartition(-probs, top - 1, axis=1)[:, :top]
    weights = np.take_along_axis(probs, best, axis=1)
    return normalize(np.einsum("nt,ntd->nd", weights, label_vectors[best]))


def conse_vectors(
    features: np.ndarray, classifier: tuple[np.ndarray, np.ndarray], label_vectors: np.ndarray, top: int = CONSE_TOP
) -> np.ndarray:
    """ConSE joint vectors: ImageNet probabilities softmax(features @ W + b) -> convex combination of the `top`."""
    w, b = classifier
    return convex_combination(softmax(features @ w + b), label_vectors, top)


def imagenet_arrays(
    imagenet_classifier: tuple[np.ndarray, np.ndarray] | None, words: WordVectors, dim: int
) -> dict[str, np.ndarray]:
    """The arrays ConSE keeps in a model: the encoder's ImageNet classifier (checked) and the label vectors."""
    return {**classifier_arrays(imagenet_classifier, dim), "imagenet.labels": imagenet_label_vectors(words)}


def classifier_arrays(imagenet_classifier: tuple[np.ndarray, np.ndarray] | None, dim: int) -> dict[str, np.ndarray]:
    """The encoder's ImageNet classifier as a model's arrays, checked: W (dim, 1000) and b (1000,) float32."""
    if imagenet_classifier is None:
        raise TrainingError("this method needs the encoder's ImageNet classifier (W, b)")
    w, b = (np.asarray(a, np.float32) for a in imagenet_classifier)
    if w.shape != (dim, 1000) or b.shape != (1000,):
        raise TrainingError(f"ImageNet classifier must be W ({dim}, 1000) and b (1000,), got {w.shape} and {b.shape}")
    return {"imagenet.w": w, "imagenet.b": b}


def transform(arrays: dict[str, np.ndarray], meta: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """A saved model's ConSE vectors (also the blend's fallback), over the top classes its sidecar records."""
    return conse_vectors(features, (arrays["imagenet.w"], arrays["imagenet.b"]), arrays["imagenet.labels"], meta.get("conse_top", CONSE_TOP))
