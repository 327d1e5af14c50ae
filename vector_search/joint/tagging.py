"""Tags: a photo's nearest words in the joint space, from a filtered vocabulary; in the sentence
space some from what the image encoder itself sees, where the model's classes do not fit the photo
(merge_tags, used by JointModel.tags).

They serve the engine (`Engine.tags`) and evaluation (tag accuracy), not training.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from vector_search.imaging.imagenet import class_synonyms
from vector_search.joint.sentence import IMAGENET_SYNONYMS, PROMPT
from vector_search.search.vectors import normalize, top_k
from vector_search.text.sentence_encoder import SentenceEncoder
from vector_search.text.vocab import FREQUENT_WORDS, STOP_WORDS
from vector_search.text.words import WordVectors

MIN_TAG_LENGTH = 3
# Words offered as tags in the sentence space (each is one text for the encoder to embed: fewer than
# GloVe's 50,000; the 10,000 most frequent hold the gallery's and Pascal's words).
SENTENCE_TAG_WORDS = 10_000
# What a photo of anything says, and how much closeness to it costs a tag (0.3; 0, 0.15 and 0.6 did
# worse on validation photos inside the training part: bench/tune_tags.py, SentenceTagSettings).
GENERIC = ("thing", "object", "")
GENERIC_PENALTY = 0.3
# A word this close (cosine of the embedded entries) to a tag chosen before it is not another tag
# (0.9; none, 0.8, 0.7, 0.6 did worse on the same validation photos).
DISTINCT: float | None = 0.9
CANDIDATES = 100  # nearest entries a photo's distinct tags are picked from
# Of a photo's tags in the sentence space, how many name what the image encoder itself sees (its
# ImageNet ConSE vector) rather than the model's tag vector, which a classifier of the collection's
# classes pulls onto one of them even for a photo of none (a rocket: aeroplane 0.82), and below which
# cosine between the two they do. Chosen on validation photos inside the training part, tags of
# photos of seen and of unseen classes (`python bench/tune_tags.py`): the most unseen-class tags while
# seen-class top-5 stays within 0.005 of no such tags (none: 0.748 / 0.086; 2 below 0.9: 0.744 / 0.211;
# 2 always: 0.736 / 0.235).
OPEN_TAGS = 2
OPEN_BELOW = 0.9
_LETTERS = re.compile(r"[^\W\d_]+")  # letters only (any script), no digits, punctuation or _


def is_tag_word(word: str) -> bool:
    """The tag filter: purely alphabetic, at least MIN_TAG_LENGTH letters, not a stop word."""
    return len(word) >= MIN_TAG_LENGTH and _LETTERS.fullmatch(word) is not None and word not in STOP_WORDS


@dataclass(frozen=True)
class TagVocabulary:
    """The words that can be tags (filtered once), with their unit vectors and, if any, a score
    offset each (tags rank by cosine + offset) and a closeness above which a word is too like a
    tag already chosen to be another (`distinct`: "plane" after "aeroplane")."""

    words: list[str]
    units: np.ndarray  # (m, dim) float32
    offsets: np.ndarray | None = None  # (m,) float32
    distinct: float | None = None


def tag_vocabulary(words: WordVectors, size: int = FREQUENT_WORDS) -> TagVocabulary:
    """The `size` most frequent words that pass `is_tag_word` (GloVe is frequency-ordered)."""
    rows = [i for i, w in enumerate(words.words[:size]) if is_tag_word(w)]
    return TagVocabulary([words.words[i] for i in rows], normalize(np.asarray(words.vectors[rows])))


@dataclass(frozen=True)
class SentenceTagSettings:
    """How tags are read in the sentence space, chosen on validation photos inside the training part
    (out-of-fold tags of the 800 training photos, `python bench/tune_tags.py`): each entry embedded
    as PROMPT or bare, the model's class words offered or not, the offset against GENERIC, and the
    closeness above which a word repeats a chosen tag (None: no such rule)."""

    prompted: bool = True
    class_words: bool = True
    generic_penalty: float = GENERIC_PENALTY
    distinct: float | None = DISTINCT


def sentence_tag_vocabulary(
    words: WordVectors, encoder: SentenceEncoder, classes: Sequence[str] = (), size: int = SENTENCE_TAG_WORDS,
    settings: SentenceTagSettings = SentenceTagSettings(),
) -> TagVocabulary:
    """Tags in the sentence encoder's space: the `size` most frequent words that pass `is_tag_word`,
    the words of the model's `classes` (`potted_plant`: potted, plant; a dataset's own names, often
    rarer: aeroplane is GloVe's 42,581st word), and ImageNet's class names of up to 3 words that all
    pass it ("coffee mug", "space shuttle"). Each is embedded as PROMPT ("a photo of a coffee mug"),
    the form the photos' vectors are made of, once (cached on disk by the encoder). Entries close
    to a photo of anything ("thing", "picture", "object") are offset by -generic_penalty times their
    cosine to GENERIC; a word closer than `distinct` to a tag already chosen is skipped."""
    entries = sentence_tag_entries(words, classes if settings.class_words else (), size)
    form = PROMPT if settings.prompted else "{}"
    units = encoder.encode_cached([form.format(e) for e in entries])
    generic = normalize(encoder.encode_cached([form.format(g) for g in GENERIC]).mean(axis=0, keepdims=True))[0]
    return TagVocabulary(entries, units, (-settings.generic_penalty * (units @ generic)).astype(np.float32), settings.distinct)


def sentence_tag_entries(words: WordVectors, classes: Sequence[str] = (), size: int = SENTENCE_TAG_WORDS) -> list[str]:
    """The entries of `sentence_tag_vocabulary`, without their vectors."""
    entries = [w for w in words.words[:size] if is_tag_word(w)]
    entries += sorted({w for name in classes for w in name.lower().split("_") if is_tag_word(w)} - set(entries))
    seen = set(entries)
    for names in class_synonyms():
        for name in names[:IMAGENET_SYNONYMS]:
            phrase = " ".join(name.lower().split())
            if phrase not in seen and len(phrase.split()) <= 3 and all(is_tag_word(w) for w in phrase.split()):
                seen.add(phrase)
                entries.append(phrase)
    return entries


def tags(joint_vectors: np.ndarray, vocabulary: TagVocabulary, k: int = 5) -> list[list[tuple[str, float]]]:
    """The k nearest tag words to each joint vector (ranked with the vocabulary's offsets, if any;
    with its `distinct`, a word that close to a tag chosen before it is passed over), as (word,
    cosine distance), nearest first."""
    sims = normalize(np.atleast_2d(joint_vectors)) @ vocabulary.units.T
    scores = sims if vocabulary.offsets is None else sims + vocabulary.offsets
    order, _ = top_k(-scores, min(k if vocabulary.distinct is None else CANDIDATES, sims.shape[1]))
    if vocabulary.distinct is not None:
        order = [_distinct(row, vocabulary.units, vocabulary.distinct, k) for row in order]
    return [[(vocabulary.words[j], float(1.0 - s[j])) for j in row[:k]] for s, row in zip(sims, order)]


def merge_tags(
    own: list[list[tuple[str, float]]], view: list[list[tuple[str, float]]], k: int, agreement: np.ndarray,
    open_tags: int = OPEN_TAGS, below: float = OPEN_BELOW,
) -> list[list[tuple[str, float]]]:
    """Per photo: its `own` tags where `agreement` (cosine of its tag vector and the encoder's view)
    is at least `below`; else its first k - open_tags own tags, then up to open_tags of the `view`'s
    tags not among them (then the rest of `own`, should `view` lack them); k in all."""
    out = []
    for mine, theirs, agrees in zip(own, view, agreement.tolist()):
        if agrees >= below:
            out.append(mine[:k])
            continue
        first = mine[: max(k - open_tags, 0)]
        taken = {w for w, _ in first}
        extra = [(w, d) for w, d in theirs if w not in taken][: k - len(first)]
        taken |= {w for w, _ in extra}
        out.append((first + extra + [(w, d) for w, d in mine if w not in taken])[:k])
    return out


def _distinct(candidates: np.ndarray, units: np.ndarray, limit: float, k: int) -> list[int]:
    """The first k of `candidates` (best first) none of which is closer than `limit` to one before it."""
    chosen: list[int] = []
    for j in candidates.tolist():
        if not chosen or float(np.max(units[chosen] @ units[j])) <= limit:
            chosen.append(j)
            if len(chosen) == k:
                break
    return chosen
