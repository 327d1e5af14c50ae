"""The word targets of the joint space: where a class, or an ImageNet label, sits among the words.

A dataset class is the mean vector of its folder name's `_`-split words (`dining_table` ->
mean(dining, table)). An ImageNet label is the weighted mean of its WordNet names' and ancestors'
head words (`imagenet_label_vectors`): ConSE mixes these, the blend falls back on them.
"""

from __future__ import annotations

import numpy as np

from vector_search.imaging.imagenet import class_ancestors, class_synonyms
from vector_search.search.vectors import normalize
from vector_search.text.vocab import FREQUENT_WORDS
from vector_search.text.words import WordVectors, cached_per_words

# ImageNet label words: the class's own and its WordNet ancestors', up to HYPERNYM_DEPTH steps
# up, weighted HYPERNYM_DECAY ** steps (imagenet_label_vectors; chosen with the blend settings).
HYPERNYM_DECAY = 0.7
HYPERNYM_DEPTH = 4


@cached_per_words(maxsize=2)
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
