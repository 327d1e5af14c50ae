"""The blend (the default method): ConSE twice. Over the dataset's own classes, with a softmax
classifier trained on the features (p_k, class word vectors t_k), and over ImageNet's, weighted
by the classifier's doubt:

    J = unit( unit(sum of p_k * unit(t_k) over the 3 most probable k) + alpha * (1 - max p)^gamma * conse )

A photo the classifier is sure of sits on its class word; one that resembles none of the trained
classes falls back to ImageNet's words.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vector_search.joint import conse
from vector_search.joint.data import TrainingData
from vector_search.joint.errors import TrainingError
from vector_search.search.vectors import normalize


@dataclass(frozen=True)
class BlendSettings:
    """Chosen on validation data inside the train part (`bench/measure_joint.py --tune`)."""

    classifier_c: float = 0.03  # the dataset classifier's inverse L2 strength (sklearn C)
    top_classes: int = 3  # classes mixed (runner-up classes can show among the tags)
    alpha: float = 1.0  # weight of the ImageNet fallback
    gamma: float = 1.0  # its sharpness


def fit(data: TrainingData, settings: BlendSettings = BlendSettings()) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The blend's arrays (ImageNet head, label vectors, the dataset classifier) and its settings."""
    arrays = conse.imagenet_arrays(data.imagenet_classifier, data.words, data.features.shape[1])
    arrays.update(fit_classifier(data.features, data.labels, settings.classifier_c, data.seed))
    return arrays, {"settings": asdict(settings)}


def transform(arrays: dict[str, np.ndarray], meta: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """A saved blend model's joint vectors, with the settings it was trained with."""
    s = meta["settings"]
    probs = classifier_probabilities(arrays, features)
    return blend_vectors(probs, arrays["class_vectors"], conse.transform(arrays, meta, features), s["top_classes"], s["alpha"], s["gamma"])


def blend_vectors(
    probs: np.ndarray, class_targets: np.ndarray, conse_units: np.ndarray, top_classes: int, alpha: float, gamma: float
) -> np.ndarray:
    """The blend formula (module docstring) from class probabilities and ConSE unit vectors."""
    own = conse.convex_combination(probs, normalize(class_targets), top_classes)
    doubt = alpha * (1.0 - probs.max(axis=1, keepdims=True)) ** gamma
    return normalize(own + doubt * conse_units)


# --- the dataset classifier -----------------------------------------------------------------------


def power_normalize(features: np.ndarray) -> np.ndarray:
    """Signed square root: damps the few large activations (+0.4 points of accuracy over 5 splits)."""
    return np.sign(features) * np.sqrt(np.abs(features))


def fit_classifier(features: np.ndarray, labels: np.ndarray, c: float, seed: int) -> dict[str, np.ndarray]:
    """Multinomial logistic regression on power-normalised, standardised features; returns its arrays.

    Fitted with one BLAS thread: on this shared 2-core machine two threads thrashed (1000 Pascal
    photos at load 17-19: 41 s against 3.6 s, `python bench/bench_classifier_threads.py`)."""
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    x = power_normalize(features)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    with threadpool_limits(1, user_api="blas"):
        model.fit((x - mean) / scale, labels)
    if len(model.classes_) != labels.max() + 1:
        raise TrainingError("every class needs training images")
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one logit for two classes: p1 = softmax([0, logit])
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    return {
        "clf.mean": mean.astype(np.float32),
        "clf.scale": scale.astype(np.float32),
        "clf.coef": coef.astype(np.float32),
        "clf.intercept": intercept.astype(np.float32),
    }


def standardise(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """Features as the fitted classifier sees them: power-normalised, standardised."""
    return (power_normalize(features) - arrays["clf.mean"]) / arrays["clf.scale"]


def classifier_probabilities(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """(n, c) class probabilities of the fitted classifier."""
    return conse.softmax(standardise(arrays, features) @ arrays["clf.coef"].T + arrays["clf.intercept"])
