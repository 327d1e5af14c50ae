"""The word targets of the joint space: where a class, or an ImageNet label, sits among the words.

A dataset class is the mean vector of its folder name's `_`-split words (`dining_table` ->
mean(dining, table)). An ImageNet label is the weighted mean of its WordNet names' and ancestors'
head words (`imagenet_label_vectors`): ConSE mixes these, the blend falls back on them.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from vector_search.imaging.imagenet import class_ancestors, class_synonyms
from vector_search.joint.model import TrainingError
from vector_search.search.index import normalize
from vector_search.text.words import WordVectors

# GloVe is ordered by frequency; past the 50,000 most frequent words lie mostly rare names,
# typos and foreign tokens whose vectors come from few occurrences. Both ImageNet label words
# and tags come from this head (it still holds aeroplane, rank 42,581, and potted, 40,745).
FREQUENT_WORDS = 50_000

# ImageNet label words: the class's own and its WordNet ancestors', up to HYPERNYM_DEPTH steps
# up, weighted HYPERNYM_DECAY ** steps (imagenet_label_vectors; chosen with the blend settings).
HYPERNYM_DECAY = 0.7
HYPERNYM_DEPTH = 4


def class_words(name: str) -> list[str]:
    """The words of a class folder name: `dining_table` -> ['dining', 'table']."""
    return [w for w in name.lower().split("_") if w]


def class_vectors(names: Sequence[str], words: WordVectors) -> np.ndarray:
    """(c, dim) mean word vector of each class name; ValueError if a class has no known word."""
    rows = []
    for name in names:
        known = [words.vector(w) for w in class_words(name) if w in words]
        if not known:
            raise TrainingError(f"class {name!r} has no word in {words.name}: rename its folder to English words joined by _")
        rows.append(np.mean(known, axis=0))
    return np.asarray(rows, np.float32)


@functools.lru_cache(maxsize=2)
def imagenet_label_vectors(words: WordVectors, decay: float = HYPERNYM_DECAY, depth: int = HYPERNYM_DEPTH) -> np.ndarray:
    """(1000, dim) word vector of each ImageNet class, read-only and computed once per word
    vectors and settings; zero rows for classes with no usable word.

    Rule (measured by bench/measure_joint.py --tune): the class and each WordNet ancestor up to
    `depth` steps up add the unit mean of their lemmas' HEAD words (the last word) among the
    FREQUENT_WORDS, weighted decay ** steps. Heads name the kind of thing ("tiger cat" -> cat,
    "passenger car" -> car); modifiers ("French bulldog" -> french) and rare or Latin names pull
    vectors astray. Ancestors add the word a breed's own name lacks: "golden retriever" ->
    retriever, then "sporting dog, gun dog" -> dog, which ImageNet's 118 dog breeds never say.
    """
    out = np.zeros((1000, words.dim), np.float32)
    for cid, synonyms in enumerate(class_synonyms()):
        nodes = [(0, synonyms)] + [(steps, lemmas) for steps, lemmas in class_ancestors(cid) if steps <= depth]
        for steps, lemmas in nodes:
            heads = {s.lower().split()[-1] for s in lemmas}
            known = [words.vector(h) for h in sorted(heads) if h in words and words.index_of(h) < FREQUENT_WORDS]
            if known:
                out[cid] += decay**steps * normalize(np.mean(known, axis=0, keepdims=True))[0]
    out.flags.writeable = False
    return out
