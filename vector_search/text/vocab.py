"""Words as the text layer sees them: which count (the frequent head of the vocabulary, no
function words) and where a dataset class sits among them (`dining_table` -> mean(dining, table)).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vector_search.errors import VectorSearchError
from vector_search.text.words import WordVectors


class VocabularyError(VectorSearchError, ValueError):
    """A class name with no word in the word vectors."""


# GloVe is ordered by frequency; past the 50,000 most frequent words lie mostly rare names,
# typos and foreign tokens whose vectors come from few occurrences. Both ImageNet label words
# and tags come from this head (it still holds aeroplane, rank 42,581, and potted, 40,745).
FREQUENT_WORDS = 50_000

# Function words never worth a tag (a short list; the FREQUENT_WORDS cut removes rare junk).
STOP_WORDS = frozenset(
    """
    about above across after again against all almost alone along already also although always am among an and
    another any anyone anything anyway anywhere are around as at back be became because become been before
    behind being below beside besides between beyond both but by can cannot could did do does doing done down
    during each either else enough even ever every everyone everything except few for from further had has have
    having he her here hers herself him himself his how however if in indeed into is it its itself just least
    less many may me might mine more most mostly much must my myself neither never nevertheless next no nobody
    none nor not nothing now nowhere of off often on once one only onto or other others otherwise our ours
    ourselves out over own per perhaps please rather same several she should since so some somehow someone
    something sometime sometimes somewhere still such than that the their theirs them themselves then there
    thereby therefore these they this those though through throughout thus to together too toward towards under
    until up upon us very via was we well were what whatever when whence whenever where whereas wherever whether
    which while whither who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves
    """.split()
)

def class_words(name: str) -> list[str]:
    """The words of a class folder name: `dining_table` -> ['dining', 'table']."""
    return [w for w in name.lower().split("_") if w]


def class_vectors(names: Sequence[str], words: WordVectors) -> np.ndarray:
    """(c, dim) mean word vector of each class name; ValueError if a class has no known word."""
    rows = []
    for name in names:
        known = [words.vector(w) for w in class_words(name) if w in words]
        if not known:
            raise VocabularyError(f"class {name!r} has no word in {words.name}: rename its folder to English words joined by _")
        rows.append(np.mean(known, axis=0))
    return np.asarray(rows, np.float32)
