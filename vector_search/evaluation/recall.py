"""Recall@k of the approximate indexes (image, joint, words) against exact search: measurable on any
folder, labelled or not (`vector-search evaluate`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vector_search.search.index import build_index, exact_index, recall_at_k

WORD_RECALL_QUERIES = 1000


def index_recall(index, vectors: np.ndarray, k: int = 10, queries: np.ndarray | None = None, leave_out_self: bool = True) -> float:
    """Recall@k of `index` against exact cosine search over `vectors` (the matrix it was built on).

    `queries` are row numbers of `vectors` used as queries (default: all rows); with
    `leave_out_self` each query's own row is dropped from both answers before comparing.
    """
    vectors = np.asarray(vectors)
    rows = np.arange(len(vectors)) if queries is None else np.asarray(queries, np.int64)
    return recall_at_k(index, exact_index(vectors), vectors[rows], k, exclude=rows if leave_out_self else None)


def index_recall_figures(engine, joint_model, seed: int = 0, k: int = 10) -> dict[str, Any]:
    """Recall@k of each approximate index against exact search, queries = indexed rows, self left
    out: the image index, an Annoy index over `joint_model`'s vectors (what JointSpace builds below
    spaces.ANNOY_MAX rows: the evaluated datasets are that small), and the word index on
    WORD_RECALL_QUERIES random words."""
    space, words = engine.images, engine.words
    figures: dict[str, Any] = {
        "image": {
            "kind": space.index.kind, "params": space.index.params, "queries": len(space.vectors),
            f"recall_at_{k}": index_recall(space.index, space.vectors, k),
        }
    }
    vectors = joint_model.transform(engine.store.vectors)
    ann = build_index(vectors, "annoy")
    figures["joint"] = {
        "kind": ann.kind, "params": ann.params, "queries": len(vectors), f"recall_at_{k}": index_recall(ann, vectors, k),
        "note": f"built as JointSpace builds it, over the {joint_model.method} model's joint vectors",
    }
    word_index = words.index()
    rows = np.random.default_rng(seed).choice(len(words), size=min(WORD_RECALL_QUERIES, len(words)), replace=False)
    figures["words"] = {
        "kind": word_index.kind, "params": word_index.params, "queries": len(rows), "vocabulary": len(words),
        f"recall_at_{k}": index_recall(word_index, words.vectors, k, queries=rows),
    }
    return figures


def index_recall_lines(recall: dict[str, Any], k: int) -> list[str]:
    """The index recall figures (index_recall_figures) as report lines."""
    lines = [f"index recall@{k} against exact search (queries = indexed rows, self left out)"]
    for name, row in recall.items():
        params = ", ".join(f"{p}={v}" for p, v in row["params"].items())
        lines.append(f"  {name:8s} {row['kind']:6s} {params:40s} {row[f'recall_at_{k}']:.4f}  ({row['queries']} queries)")
    return lines
