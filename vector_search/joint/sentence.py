"""The joint space in the sentence encoder's space (all-MiniLM-L6-v2, 384-d), from what the folder has.

Text there is one vector a whole sentence ("a dog playing on the beach": beach counts), so the
photo side is mapped into it from whatever the photos come with:
- nothing (a flat folder): ConSE over ImageNet's classes, each class the mean sentence vector of
  PROMPT over up to IMAGENET_SYNONYMS of its WordNet names ("a photo of a tabby", "a photo of a
  tabby cat") and its WordNet parent's ("a photo of a domestic cat"); the untrained model
  (training.conse_model with text="minilm");
- class folders (the "sentence" method): the blend's formula (blend.py) with the classes as
  "a photo of a {class}" sentences and the sentence ConSE as its fallback;
- captions too: plus a ridge map of the standardised features onto the unit mean sentence vector
  of the photo's captions, added with a weight chosen on a validation part of the training photos
  (SentenceSettings.caption_weights; the test split never reaches `fit`):

    J = unit( blend(x) + weight * unit(W z(x)) )

Measured (vector-search evaluate, docs/sentence-encoder.md): held-out caption R@1 0.13 -> 0.37
against the GloVe captions model, class-P@10 0.64 -> 0.76.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from vector_search.imaging.imagenet import class_ancestors, class_synonyms
from vector_search.joint import blend, conse
from vector_search.joint.captions import ridge
from vector_search.joint.data import TrainingData, split
from vector_search.joint.errors import TrainingError
from vector_search.search.vectors import normalize, top_k
from vector_search.text.sentence_encoder import SentenceEncoder

PROMPT = "a photo of a {}"
IMAGENET_SYNONYMS = 3  # names of an ImageNet class averaged (the probe: 3 worked)
# WordNet ancestors added to an ImageNet class's vector: up to HYPERNYM_DEPTH steps up, weighted
# HYPERNYM_DECAY ** steps. Chosen on a validation half of the Pascal photos, mean average precision
# of the class words (bench/tune_sentence_conse.py; the scored figures are of all photos).
HYPERNYM_DEPTH = 1
HYPERNYM_DECAY = 0.7
CONSE_TOP = 20  # ImageNet classes a photo's ConSE vector mixes (chosen the same way; GloVe's: conse.CONSE_TOP)
VALIDATION_SIZE = 0.2  # of the training photos, to choose the caption weight; then refitted on all


@dataclass(frozen=True)
class SentenceSettings:
    """The blend's settings (chosen for it on validation, bench/measure_joint.py --tune), the ridge
    strength on the standardised features (the probe: ~3000 on 1280-d), and the caption weights
    the validation photos choose from."""

    classifier_c: float = 0.03
    top_classes: int = 3
    alpha: float = 1.0
    gamma: float = 1.0
    ridge: float = 3000.0
    caption_weights: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)


def prompt(name: str) -> str:
    """The sentence of a class name: `dining_table` -> "a photo of a dining table"."""
    return PROMPT.format(" ".join(name.replace("_", " ").split()))


def imagenet_prompt_vectors(encoder: SentenceEncoder, depth: int = HYPERNYM_DEPTH, decay: float = HYPERNYM_DECAY) -> np.ndarray:
    """(1000, 384) unit vector of each ImageNet class: the unit mean of its prompts, plus decay ** steps
    times the prompt of each WordNet ancestor's first name up to `depth` steps up ("a photo of a
    tabby" + 0.7 "a photo of a domestic cat"); the prompts are cached on disk by the encoder."""
    names = [names[:IMAGENET_SYNONYMS] for names in class_synonyms()]
    ancestors = [(cid, decay**steps, lemmas[0]) for cid in range(len(names)) for steps, lemmas in class_ancestors(cid) if steps <= depth]
    vectors = encoder.encode_cached([prompt(n) for row in names for n in row] + [prompt(name) for _, _, name in ancestors])
    owner = np.repeat(np.arange(len(names)), [len(row) for row in names])
    out = np.zeros((len(names), encoder.dim), np.float32)
    np.add.at(out, owner, vectors[: len(owner)])
    out = normalize(out)
    if ancestors:
        weights = np.asarray([w for _, w, _ in ancestors], np.float32)[:, None]
        np.add.at(out, [cid for cid, _, _ in ancestors], weights * vectors[len(owner) :])
    return normalize(out)


def class_prompt_vectors(classes: Sequence[str], encoder: SentenceEncoder) -> np.ndarray:
    """(c, 384) sentence vector of each class's prompt."""
    return encoder.encode_cached([prompt(c) for c in classes])


def conse_arrays(imagenet_classifier: tuple[np.ndarray, np.ndarray] | None, encoder: SentenceEncoder, dim: int) -> dict[str, np.ndarray]:
    """What sentence ConSE keeps: the encoder's ImageNet classifier and the classes' prompt vectors."""
    return {**conse.classifier_arrays(imagenet_classifier, dim), "imagenet.labels": imagenet_prompt_vectors(encoder)}


def caption_targets(captions: Sequence[Sequence[str]], encoder: SentenceEncoder) -> tuple[np.ndarray, np.ndarray]:
    """(n, 384) unit mean sentence vector of each photo's captions, and (n,) whether it has any."""
    lines = [line for photo in captions for line in photo]
    vectors = encoder.encode_cached(lines) if lines else np.zeros((0, encoder.dim), np.float32)
    owner = np.repeat(np.arange(len(captions)), [len(photo) for photo in captions])
    targets = np.zeros((len(captions), encoder.dim), np.float32)
    np.add.at(targets, owner, vectors)
    return normalize(targets), np.asarray([len(photo) > 0 for photo in captions])


def fit(data: TrainingData, settings: SentenceSettings = SentenceSettings()) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The sentence ConSE, the class classifier, and with captions the caption map and its weight."""
    encoder = _encoder(data)
    s = asdict(settings)
    arrays = conse_arrays(data.imagenet_classifier, encoder, data.features.shape[1])
    meta: dict[str, Any] = {"settings": s}
    captioned = data.captions is not None and any(data.captions)
    if captioned:
        targets, has = caption_targets(data.captions, encoder)
        if has.sum() < 2:
            raise TrainingError(f"only {int(has.sum())} training photos have captions: too few to learn from")
        s["caption_weight"], meta["validation"] = _choose_caption_weight(data, arrays, encoder, settings)
    arrays.update(blend.fit_classifier(data.features, data.labels, settings.classifier_c, data.seed))
    if captioned:
        arrays["captions.w"] = ridge(blend.standardise(arrays, data.features[has]), targets[has], settings.ridge)
        meta["captions"] = {"photos": int(has.sum()), "captions": int(sum(len(c) for c in data.captions))}
    return arrays, meta


def transform(arrays: dict[str, np.ndarray], meta: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """A saved sentence model's joint vectors (module docstring)."""
    joint = tag_transform(arrays, meta, features)
    if "captions.w" not in arrays:
        return joint
    return normalize(joint + meta["settings"]["caption_weight"] * normalize(blend.standardise(arrays, features) @ arrays["captions.w"]))


def tag_transform(arrays: dict[str, np.ndarray], meta: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """The vectors tags are read from: the blend part, without the captions' context (as the GloVe
    captions method: with it, words like "flight" or "grass" push the photo's thing out of the top 5)."""
    s = meta["settings"]
    probs = blend.classifier_probabilities(arrays, features)
    return blend.blend_vectors(probs, arrays["class_vectors"], conse.transform(arrays, meta, features), s["top_classes"], s["alpha"], s["gamma"])


def _encoder(data: TrainingData) -> SentenceEncoder:
    if data.sentences is None:
        raise TrainingError("the sentence method needs the sentence encoder")
    return data.sentences


def _choose_caption_weight(
    data: TrainingData, arrays: dict[str, np.ndarray], encoder: SentenceEncoder, settings: SentenceSettings
) -> tuple[float, dict[str, Any]]:
    """The `settings.caption_weights` entry whose model, fitted on 80% of the training photos, best
    finds the other 20% from their captions (mean of recall@5 of the own photo among them and
    class-P@10), and the scores."""
    fit_pos, val_pos = split(data.labels, VALIDATION_SIZE, data.seed)
    part = dict(arrays, class_vectors=data.targets, **blend.fit_classifier(data.features[fit_pos], data.labels[fit_pos], settings.classifier_c, data.seed))
    captions = [data.captions[i] for i in fit_pos]  # type: ignore[index]
    targets, has = caption_targets(captions, encoder)
    part["captions.w"] = ridge(blend.standardise(part, data.features[fit_pos][has]), targets[has], settings.ridge)
    lines = [(row, line) for row, i in enumerate(val_pos) for line in data.captions[i]]  # type: ignore[index]
    if not lines:
        return settings.caption_weights[len(settings.caption_weights) // 2], {}
    queries = encoder.encode_cached([line for _, line in lines])
    owner = np.asarray([row for row, _ in lines])
    labels = data.labels[val_pos]
    scores = {}
    for weight in settings.caption_weights:
        meta = {"settings": dict(asdict(settings), caption_weight=weight)}
        sims = queries @ transform(part, meta, data.features[val_pos]).T
        own = sims[np.arange(len(owner)), owner]
        recall5 = np.mean(1 + np.count_nonzero(sims > own[:, None], axis=1) <= 5)
        top, _ = top_k(-sims, 10)
        class_p10 = np.mean(labels[top] == labels[owner][:, None])
        scores[weight] = round(float(recall5 + class_p10) / 2, 4)
    best = max(scores, key=scores.__getitem__)
    return best, {"photos": int(len(val_pos)), "captions": len(lines), "score_by_caption_weight": {str(w): v for w, v in scores.items()}}
