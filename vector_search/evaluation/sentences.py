"""Sentence figures: captions of held-out photos used as queries.

Two views, as `vector-search evaluate` reports them:
- finding the exact photo among the held-out photos (recall@1/5/10, median rank), the protocol
  of Socher et al. (2014, "Grounded Compositional Semantics for Finding and Describing Images
  with Sentences") on this same dataset;
- finding photos of the right class among ALL photos (class-P@10), what a user searching a
  collection sees.

Queries are read as the engine reads them (`query_reader`): in the sentence space each term
encoded whole, in GloVe's weighed against the collection's joint vectors (SIF and spread weights,
class synonyms).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from vector_search.search.vectors import normalize, top_k
from vector_search.text.query import QueryError, parse_query, query_vector, sentence_query_vector
from vector_search.text.sentences import Collection

Reader = Callable[[str], np.ndarray]  # a query's text -> its vector, as the engine reads it


def _terms(query: str) -> list[tuple[float, str]]:
    try:
        return parse_query(query)
    except QueryError:
        return []


def query_reader(engine, text: str, joint_vectors: np.ndarray, labels: Sequence[str], queries: Sequence[str] = ()) -> Reader:
    """How the engine reads a query for a model in the `text` space ("minilm": each term encoded
    whole; "glove": weighed against the collection of these joint vectors and class labels).
    `queries` about to be read are embedded first in batches, through the encoder's bank."""
    if text == "minilm":
        terms = [phrase for query in queries for _, phrase in _terms(query)]
        engine.sentences.encode_cached(list(dict.fromkeys(terms)))
        return lambda query: sentence_query_vector(query, engine.sentences).vector
    collection = Collection.of(joint_vectors, list(labels), engine.words)
    return lambda query: query_vector(query, engine.words, collection).vector

RECALL_KS = (1, 5, 10)


def sentence_retrieval(
    joint_vectors: np.ndarray,
    labels: Sequence[str],
    captions: Sequence[Sequence[str]],
    test: np.ndarray,
    reader: Reader,
    k: int = 10,
) -> dict[str, Any]:
    """Figures of each held-out photo's captions (`test` rows) as queries over `joint_vectors`, read by `reader`."""
    labels = np.asarray(labels)
    queries, owners, first = [], [], []
    for row in np.asarray(test).tolist():
        for n, text in enumerate(captions[row]):
            try:
                queries.append(reader(text))
            except QueryError:  # a caption with no known word: nothing to search with
                continue
            owners.append(row)
            first.append(n == 0)
    if not queries:
        return {"captions": 0}
    owners_arr, first_arr = np.asarray(owners), np.asarray(first)
    sims = normalize(np.asarray(queries, np.float32)) @ normalize(joint_vectors).T
    top, _ = top_k(-sims, k)
    class_hits = (labels[top] == labels[owners_arr][:, None]).mean(axis=1)
    among = sims[:, np.asarray(test)]
    own = sims[np.arange(len(owners_arr)), owners_arr]
    ranks = 1 + np.count_nonzero(among > own[:, None], axis=1)  # rank of the exact photo among the held-out ones
    ranks_all = 1 + np.count_nonzero(sims > own[:, None], axis=1)  # ... among all photos
    return {
        "captions": int(len(owners_arr)),
        "photos": int(len(test)),
        f"class_precision_at_{k}_all_photos": float(class_hits.mean()),
        f"first_caption_class_precision_at_{k}_all_photos": float(class_hits[first_arr].mean()),
        **{f"recall_at_{r}": float(np.mean(ranks <= r)) for r in RECALL_KS},
        "median_rank": float(np.median(ranks)),
        **{f"recall_at_{r}_all_photos": float(np.mean(ranks_all <= r)) for r in RECALL_KS},
        "median_rank_all_photos": float(np.median(ranks_all)),
        "note": f"each caption of a held-out photo; recall and rank of its photo among the {len(test)} held-out photos, "
                f"class-P@{k} over all {len(labels)} photos",
    }


# --- the report's lines ---------------------------------------------------------------------------


def sentence_lines(figures: dict[str, Any]) -> list[str]:
    """The report's sentence table, if the dataset had captions."""
    k = figures["k"]
    rows = {method: row["sentences"] for method, row in figures["joint"].items() if row.get("sentences", {}).get("captions")}
    if not rows:
        return []
    lines = [
        "",
        "sentences: each caption of a held-out photo as a query (captions trained on by the captions method only)",
        f"  {'method':18s} {f'class-P@{k}':>10s} {'R@1':>6s} {'R@5':>6s} {'R@10':>6s} {'median rank':>12s}",
    ]
    for method, row in rows.items():
        lines.append(
            f"  {method:18s} {row[f'class_precision_at_{k}_all_photos']:>10.3f} {row['recall_at_1']:>6.3f} "
            f"{row['recall_at_5']:>6.3f} {row['recall_at_10']:>6.3f} {row['median_rank']:>12.0f}"
        )
    lines.append(f"  (class-P@{k}: photos of the caption's class among the first {k} of all photos; R@n and median rank:"
                 " of the caption's own photo among the held-out photos)")
    return lines


def comparison_lines(figures: dict[str, Any]) -> list[str]:
    """The report's table of every text figure in GloVe's space (its best method: captions if
    trained, else the default) beside the sentence encoder's."""
    joint, k = figures["joint"], figures["k"]
    if "sentence" not in joint:
        return []
    glove_method = "captions" if "captions" in joint else next(iter(joint))
    glove, minilm = joint[glove_method], joint["sentence"]
    rows = [
        (f"class words P@{k}, test split", lambda j: j["text_to_image"]["mean_precision_at_k"]),
        (f"class words P@{k}, all photos", lambda j: j["class_words_all_photos"]),
        ("tags top-1", lambda j: j["tags"]["top1"]),
        ("tags top-5", lambda j: j["tags"]["top5"]),
        (f"zero-shot P@{k}", lambda j: j["zero_shot"]["mean_precision_at_k"]),
    ]
    captions = [(f"captions class-P@{k}, all photos", f"class_precision_at_{k}_all_photos"),
                (f"first captions class-P@{k}, all photos", f"first_caption_class_precision_at_{k}_all_photos"),
                *((f"own photo R@{r} among held-out", f"recall_at_{r}") for r in RECALL_KS),
                *((f"own photo R@{r} among all photos", f"recall_at_{r}_all_photos") for r in RECALL_KS),
                ("median rank among held-out", "median_rank"), ("median rank among all photos", "median_rank_all_photos")]
    if glove.get("sentences", {}).get("captions") and minilm.get("sentences", {}).get("captions"):
        rows += [(name, lambda j, key=key: j["sentences"][key]) for name, key in captions]
    flat = figures.get("flat", {})
    if flat:
        rows.append((f"flat folder: class words P@{k}", lambda j: j["class_words_all_photos"]))
        if flat["glove"].get("sentences", {}).get("captions"):
            rows.append((f"flat folder: first captions class-P@{k}", lambda j: j["sentences"][f"first_caption_class_precision_at_{k}_all_photos"]))
    lines = ["", f"GloVe ({glove_method}) against the sentence encoder (sentence)", f"  {'figure':42s} {'GloVe':>8s} {'sentence':>9s}"]
    for name, get in rows:
        a, b = (get(flat[t]) for t in ("glove", "minilm")) if name.startswith("flat") else (get(glove), get(minilm))
        lines.append(f"  {name:42s} {a:>8.3f} {b:>9.3f}")
    lines.append("  (flat folder: no class folders, no captions: the untrained ConSE of each space; labels only score)")
    return lines
