"""Retrieval metrics as plain functions over numpy arrays, and the whole evaluation of an engine.

`evaluate(engine, ...)` computes every figure `vector-search evaluate` prints: leave-one-out
image->image precision@k / mAP in the space the engine searches, text->image precision@k and
tag accuracy on the joint model's held-out 20% split, zero-shot text->image for classes left out
of training, sentence figures when the dataset has captions (evaluate_sentences.py: held-out
captions as queries, with and without caption training), and recall@k of each approximate index
against exact search.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from . import config
from . import index as nn
from .index import normalize
from .joint import class_words


def precision_at_k(relevant: np.ndarray, k: int) -> float:
    """Fraction of the first k results that are relevant; `relevant` is a ranked boolean array."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return float(np.count_nonzero(np.asarray(relevant[:k], bool))) / k


def average_precision(relevant: np.ndarray) -> float:
    """Mean of precision@i over the ranks i of the relevant results (0.0 if there are none)."""
    relevant = np.asarray(relevant, bool)
    hits = np.flatnonzero(relevant)
    if not len(hits):
        return 0.0
    return float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))


def cosine_rankings(queries: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(q, n) item positions, most similar first, for each query row (cosine similarity)."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    x = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    return np.argsort(-(q @ x.T), axis=1, kind="stable")


def mean_precision_at_k(
    queries: np.ndarray, query_labels: np.ndarray, items: np.ndarray, item_labels: np.ndarray, k: int = 10
) -> float:
    """Mean over queries of precision@k, ranking items by cosine; relevant = same label."""
    rankings = cosine_rankings(queries, items)
    labels = np.asarray(item_labels)
    return float(np.mean([precision_at_k(labels[r] == ql, k) for r, ql in zip(rankings, query_labels)]))


# --- vectorised metrics over whole rankings ------------------------------------------------------------


def ranked_relevance(
    queries: np.ndarray,
    query_labels: Sequence,
    items: np.ndarray,
    item_labels: Sequence,
    leave_one_out: bool = False,
) -> np.ndarray:
    """(q, n) boolean matrix: row i is item relevance (same label) in cosine order for query i.

    Exact numpy ranking (stable: ties keep item order). With `leave_one_out` the queries ARE the
    items (q == n) and each query's own row is removed from its ranking, giving (n, n - 1).
    """
    q = normalize(np.atleast_2d(queries))
    x = normalize(np.atleast_2d(items))
    sims = q @ x.T
    if leave_one_out:
        if sims.shape[0] != sims.shape[1]:
            raise ValueError("leave_one_out needs the queries to be the items")
        np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")
    if leave_one_out:
        order = order[:, :-1]  # the query itself sorts last
    labels = np.asarray(item_labels)
    return labels[order] == np.asarray(query_labels)[:, None]


def precisions_at_k(relevance: np.ndarray, k: int) -> np.ndarray:
    """Precision@k of each row of a ranked relevance matrix (same as `precision_at_k` per row)."""
    if k < 1:
        raise ValueError("k must be at least 1")
    return np.count_nonzero(relevance[:, :k], axis=1) / k


def average_precisions(relevance: np.ndarray) -> np.ndarray:
    """Average precision of each row (same as `average_precision` per row; 0.0 with no hit)."""
    relevance = np.asarray(relevance, bool)
    hits = np.cumsum(relevance, axis=1)
    precision = hits / np.arange(1, relevance.shape[1] + 1)
    total = relevance.sum(axis=1)
    return np.where(total > 0, (precision * relevance).sum(axis=1) / np.maximum(total, 1), 0.0)


def image_retrieval(vectors: np.ndarray, labels: Sequence, k: int = 10) -> dict[str, Any]:
    """Leave-one-out image->image retrieval: mean precision@k and mAP, relevant = same label.

    Pass the vectors the engine searches (ImageSpace.vectors: normalised then centred); the
    ranking is by cosine, as the Annoy index (angular) ranks them, but exact.
    """
    rel = ranked_relevance(vectors, labels, vectors, labels, leave_one_out=True)
    return {
        "queries": int(len(rel)),
        "k": k,
        "precision_at_k": float(precisions_at_k(rel, k).mean()),
        "map": float(average_precisions(rel).mean()),
    }


def text_to_image(
    query_vectors: np.ndarray, query_labels: Sequence[str], item_vectors: np.ndarray, item_labels: Sequence, k: int = 10
) -> dict[str, Any]:
    """Precision@k of each text query (one per class) over joint item vectors, and the mean."""
    rel = ranked_relevance(query_vectors, query_labels, item_vectors, item_labels)
    per_class = precisions_at_k(rel, k)
    return {
        "k": k,
        "items": int(len(item_labels)),
        "per_class": {str(c): round(float(p), 4) for c, p in zip(query_labels, per_class)},
        "mean_precision_at_k": float(per_class.mean()) if len(per_class) else 0.0,
    }


def tag_accuracy(tag_lists: Sequence[Sequence[str]], labels: Sequence[str], ks: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """Top-k tag accuracy: a photo is a hit at k if ANY word of its class name (`dining_table`
    -> dining, table) is among its first k tags (`tag_lists[i]`, best first)."""
    out: dict[str, Any] = {"photos": len(labels)}
    for k in ks:
        hits = [bool(set(class_words(str(label))) & set(t[:k])) for t, label in zip(tag_lists, labels)]
        out[f"top{k}"] = float(np.mean(hits)) if hits else 0.0
    return out


def index_recall(index, vectors: np.ndarray, k: int = 10, queries: np.ndarray | None = None, leave_out_self: bool = True) -> float:
    """Recall@k of `index` against exact cosine search over `vectors` (the matrix it was built on).

    `queries` are row numbers of `vectors` used as queries (default: all rows); with
    `leave_out_self` each query's own row is dropped from both answers before comparing.
    """
    vectors = np.asarray(vectors)
    rows = np.arange(len(vectors)) if queries is None else np.asarray(queries, np.int64)
    return nn.recall_at_k(index, nn.exact_index(vectors), vectors[rows], k, exclude=rows if leave_out_self else None)


def class_queries(joint_vectors: np.ndarray, labels: Sequence[str], names: Sequence[str], words) -> np.ndarray:
    """(len(names), dim) class names as queries, read as the engine reads them: weighed against
    the collection of these joint vectors and class labels (sentences.Collection)."""
    from .query import query_vector
    from .sentences import Collection

    collection = Collection.of(joint_vectors, list(labels), words)
    return np.stack([query_vector(c.replace("_", " "), words, collection).vector for c in names])


# --- the whole evaluation of an engine --------------------------------------------------------------

# Classes left out of training for the zero-shot figures (Pascal VOC names): two animals, two
# vehicles, one piece of furniture, so every kind of class stays represented in training.
DEFAULT_HOLDOUT = ("cat", "bus", "boat", "sheep", "sofa")
WORD_RECALL_QUERIES = 1000


def vgg16_unavailable_reason() -> str | None:
    """Why VGG16 cannot embed photos here (None if its ImageNet weights are in the Keras cache)."""
    from .encoders.vgg16 import WEIGHTS_FILE

    path = config.keras_home() / "models" / WEIGHTS_FILE
    if path.is_file():
        return None
    return f"VGG16 ImageNet weights not cached ({path} missing) and no internet to download them"


def evaluate(
    engine,
    dataset: str | os.PathLike | None = None,
    holdout_classes: Sequence[str] = DEFAULT_HOLDOUT,
    seed: int = 0,
    k: int = 10,
    methods: Sequence[str] | None = None,
    epochs: int = 50,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every quality figure of an engine's store, as one JSON-ready dict (see `vector-search evaluate`).

    Indexes `dataset` first if given (instant when the store is up to date). Joint models are
    trained here on the cached features (default method, the classic hybrid, and the captions
    method if the dataset has captions) and never saved: the user's models/ and the store's joint
    cache are left alone.
    """
    from . import joint
    from .encoders import ENCODER_NAMES
    from .engine import ImageSpace
    from .evaluate_sentences import sentence_retrieval
    from .store import open_store, store_dir

    say = progress or (lambda message: None)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if dataset is not None:
        say(f"indexing {dataset}")
        engine.index(dataset)
    store = engine.store
    labels = np.asarray(store.classes)
    classes = sorted(set(labels.tolist()))
    holdout = sorted(set(holdout_classes))
    unknown = sorted(set(holdout) - set(classes))
    if unknown:
        raise ValueError(f"unknown held-out class(es) {', '.join(unknown)}; classes are {', '.join(classes)}")
    timings["index"] = time.perf_counter() - start
    captions = engine.captions()
    methods = list(methods or (joint.DEFAULT_METHOD, "hybrid", *(("captions",) if captions else ())))

    # image -> image, for each encoder: the engine's own store, other encoders' stores if indexed.
    t = time.perf_counter()
    say("image to image")
    image_to_image: dict[str, Any] = {}
    for name in ENCODER_NAMES:
        if name == store.encoder:
            space, space_labels = engine.images, labels
        else:  # another encoder counts only if its store of this dataset was already indexed
            if not (store_dir(engine.store_root, name) / "features.npz").is_file():
                reason = vgg16_unavailable_reason() if name == "vgg16" else None
                hint = f"not indexed under {engine.store_root} (`vector-search index DATASET --encoder {name}`)"
                image_to_image[name] = {"unavailable": reason or hint}
                continue
            other = open_store(engine.store_root, name)
            space, space_labels = ImageSpace.of(other), np.asarray(other.classes)
        image_to_image[name] = dict(image_retrieval(space.vectors, space_labels, k), space="normalised, centred (ImageSpace)")
    timings["image_to_image"] = time.perf_counter() - t

    words = engine.words
    classifier = engine.encoder.classifier()
    vocabulary = engine.tag_vocabulary
    items = [item.path for item in store.items]

    def train(method: str, exclude: Sequence[str]):
        return joint.train(
            store.vectors, labels, words, method=method, encoder=store.encoder, imagenet_classifier=classifier,
            exclude_classes=exclude, seed=seed, epochs=epochs, items=items,
            captions=captions if method == "captions" else None,
        )

    by_method: dict[str, Any] = {}
    joint_for_index = None
    for method in methods:
        t = time.perf_counter()
        say(f"joint method {method}: training on {len(classes)} classes")
        model = train(method, ())
        test = np.asarray(model.meta["split"]["test"], np.int64)
        vectors = model.transform(store.vectors)
        if joint_for_index is None:
            joint_for_index = vectors
        t2i = text_to_image(class_queries(vectors, labels, classes, words), classes, vectors[test], labels[test], k)
        tag_lists = [[w for w, _ in row] for row in joint.tags(model.tag_vectors(store.vectors[test]), vocabulary, 5)]
        tags = tag_accuracy(tag_lists, labels[test], (1, 5))
        say(f"joint method {method}: zero-shot, holding out {', '.join(holdout)}")
        zs_model = train(method, holdout)
        zs_vectors = zs_model.transform(store.vectors)
        zero_shot = text_to_image(class_queries(zs_vectors, labels, holdout, words), holdout, zs_vectors, labels, k)
        zero_shot["note"] = "held-out class names queried over ALL photos; their photos were never trained on"
        by_method[method] = {
            "train_seconds": model.meta["train_seconds"],
            "text_to_image": t2i,
            "tags": dict(tags, rule="hit if any word of the class name is among the tags"),
            "zero_shot": zero_shot,
        }
        if captions and method != "hybrid":
            say(f"joint method {method}: held-out captions as queries")
            by_method[method]["sentences"] = sentence_retrieval(vectors, labels, captions, test, words, k)
        timings[f"joint_{method}"] = time.perf_counter() - t

    # index quality: each approximate index against exact search, queries = indexed rows, self left out.
    t = time.perf_counter()
    say("index recall")
    index_quality: dict[str, Any] = {}
    space = engine.images
    index_quality["image"] = {
        "kind": space.index.kind, "params": space.index.params, "queries": len(space.vectors),
        f"recall_at_{k}": index_recall(space.index, space.vectors, k),
    }
    if joint_for_index is not None:
        ann = nn.build_index(joint_for_index, "annoy")
        index_quality["joint"] = {
            "kind": ann.kind, "params": ann.params, "queries": len(joint_for_index),
            f"recall_at_{k}": index_recall(ann, joint_for_index, k),
            "note": f"built as JointSpace builds it, over the {methods[0]} model's joint vectors",
        }
    word_index = words.index()
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(words), size=min(WORD_RECALL_QUERIES, len(words)), replace=False)
    index_quality["words"] = {
        "kind": word_index.kind, "params": word_index.params, "queries": len(rows), "vocabulary": len(words),
        f"recall_at_{k}": index_recall(word_index, words.vectors, k, queries=rows),
    }
    timings["index_recall"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - start

    return {
        "dataset": store.dataset,
        "encoder": store.encoder,
        "photos": len(store),
        "classes": len(classes),
        "k": k,
        "seed": seed,
        "split": {"test_size": 0.2, "stratified": True, "seed": seed, "test_photos": int(len(test)) if methods else 0},
        "holdout_classes": holdout,
        "image_to_image": image_to_image,
        "joint": by_method,
        "index_recall": index_quality,
        "seconds": {name: round(v, 2) for name, v in timings.items()},
    }
