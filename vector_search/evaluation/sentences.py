"""Sentence figures: captions of held-out photos used as queries.

Two views, as `vector-search evaluate` reports them:
- finding the exact photo among the held-out photos (recall@1/5/10, median rank), the protocol
  of Socher et al. (2014, "Grounded Compositional Semantics for Finding and Describing Images
  with Sentences") on this same dataset;
- finding photos of the right class among ALL photos (class-P@10), what a user searching a
  collection sees.

Queries are read as the engine reads them (query.query_vector against the collection's joint
vectors: SIF and spread weights, class synonyms).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from vector_search.search.index import normalize
from vector_search.text.query import QueryError, query_vector
from vector_search.text.sentences import Collection
from vector_search.text.words import WordVectors

RECALL_KS = (1, 5, 10)


def sentence_retrieval(
    joint_vectors: np.ndarray,
    labels: Sequence[str],
    captions: Sequence[Sequence[str]],
    test: np.ndarray,
    words: WordVectors,
    k: int = 10,
    collection: Collection | None = None,
) -> dict[str, Any]:
    """Figures of each held-out photo's captions (`test` rows) as queries over `joint_vectors`
    (weighed against `collection`, built from them unless given)."""
    labels = np.asarray(labels)
    collection = Collection.of(joint_vectors, labels.tolist(), words) if collection is None else collection
    queries, owners, first = [], [], []
    for row in np.asarray(test).tolist():
        for n, text in enumerate(captions[row]):
            try:
                queries.append(query_vector(text, words, collection).vector)
            except QueryError:  # a caption with no known word: nothing to search with
                continue
            owners.append(row)
            first.append(n == 0)
    if not queries:
        return {"captions": 0}
    owners_arr, first_arr = np.asarray(owners), np.asarray(first)
    sims = normalize(np.asarray(queries, np.float32)) @ normalize(joint_vectors).T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    class_hits = (labels[top] == labels[owners_arr][:, None]).mean(axis=1)
    among = sims[:, np.asarray(test)]
    own = sims[np.arange(len(owners_arr)), owners_arr]
    ranks = 1 + np.count_nonzero(among > own[:, None], axis=1)  # rank of the exact photo among the held-out ones
    return {
        "captions": int(len(owners_arr)),
        "photos": int(len(test)),
        f"class_precision_at_{k}_all_photos": float(class_hits.mean()),
        f"first_caption_class_precision_at_{k}_all_photos": float(class_hits[first_arr].mean()),
        **{f"recall_at_{r}": float(np.mean(ranks <= r)) for r in RECALL_KS},
        "median_rank": float(np.median(ranks)),
        "note": f"each caption of a held-out photo; recall and rank of its photo among the {len(test)} held-out photos, "
                f"class-P@{k} over all {len(labels)} photos",
    }
