"""Retrieval metrics as plain functions over numpy arrays, and the whole evaluation of an engine.

Each metric has one implementation, over whole rankings at once (`ranked_relevance` ranks by
float32 cosine; `precisions_at_k`, `average_precisions` read the rankings).

`evaluate(engine, ...)` computes every figure `vector-search evaluate` prints, in three parts:
`image_figures` (leave-one-out image->image precision@k / mAP in the space the engine searches),
`joint_figures` (text->image precision@k and tag accuracy on the joint model's held-out 20% split,
zero-shot text->image for classes left out of training, and when the dataset has captions the
sentence figures of evaluation/sentences.py: held-out captions as queries, with and without caption
training) and `index_recall_figures` (recall.py: recall@k of each approximate index against exact search); a flat folder
(no class folders) gets library.py's figures instead. `format_report` turns the figures into the text report.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

import numpy as np

from vector_search import config
from vector_search.datasets.pascal import store_captions
from vector_search.errors import VectorSearchError
from vector_search.evaluation import library
from vector_search.evaluation.recall import index_recall_figures, index_recall_lines
from vector_search.joint import DEFAULT_METHOD, SENTENCE_METHOD, JointModel, train
from vector_search.search.vectors import normalize
from vector_search.store.sampling import has_class_folders
from vector_search.text.vocab import class_words


class EvaluationError(VectorSearchError, ValueError):
    """An evaluation that cannot run as asked (k < 1, an unknown class to hold out, ...)."""

# --- the metrics, over whole rankings at once -------------------------------------------------------


def ranked_relevance(
    queries: np.ndarray,
    query_labels: Sequence,
    items: np.ndarray,
    item_labels: Sequence,
    leave_one_out: bool = False,
) -> np.ndarray:
    """(q, n) boolean matrix: row i is item relevance (same label) in cosine order for query i.

    Exact float32 ranking (stable: ties keep item order). With `leave_one_out` the queries ARE
    the items (q == n) and each query's own row is removed from its ranking, giving (n, n - 1).
    """
    sims = normalize(np.atleast_2d(queries)) @ normalize(np.atleast_2d(items)).T
    if leave_one_out:
        if sims.shape[0] != sims.shape[1]:
            raise EvaluationError("leave_one_out needs the queries to be the items")
        np.fill_diagonal(sims, -np.inf)
    order = np.argsort(-sims, axis=1, kind="stable")
    if leave_one_out:
        order = order[:, :-1]  # the query itself sorts last
    labels = np.asarray(item_labels)
    return labels[order] == np.asarray(query_labels)[:, None]


def precisions_at_k(relevance: np.ndarray, k: int) -> np.ndarray:
    """Precision@k of each row of a ranked relevance matrix: the share of relevant items among its first k."""
    if k < 1:
        raise EvaluationError("k must be at least 1")
    return np.count_nonzero(relevance[:, :k], axis=1) / k


def average_precisions(relevance: np.ndarray) -> np.ndarray:
    """Average precision of each row: the mean of precision@i over the ranks i of its relevant
    items (0.0 for a row with none)."""
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


# --- the whole evaluation of an engine --------------------------------------------------------------

# Classes left out of training for the zero-shot figures (Pascal VOC names): two animals, two
# vehicles, one piece of furniture, so every kind of class stays represented in training.
DEFAULT_HOLDOUT = ("cat", "bus", "boat", "sheep", "sofa")
CLASSES_ONLY = "sentence, classes"  # the sentence method trained without the captions (its report row)


def vgg16_unavailable_reason() -> str | None:
    """Why VGG16 cannot embed photos here (None if its ImageNet weights are in the Keras cache)."""
    from vector_search.imaging.encoders.vgg16 import WEIGHTS_FILE

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
    say = progress or (lambda message: None)
    clock = _Laps()
    if dataset is not None:
        say(f"indexing {dataset}")
        engine.index(dataset)
    store = engine.store
    if not has_class_folders(store.classes):  # a flat folder: no classes to score with (evaluation/library.py)
        say("a flat folder, no class folders: duplicates, metadata, tags, index recall")
        return dict(library.library_figures(engine, seed, k), index_recall=index_recall_figures(engine, engine.joint, seed, k), seconds=clock.seconds())
    classes = sorted(set(store.classes))
    holdout = sorted(set(holdout_classes))
    if unknown := sorted(set(holdout) - set(classes)):
        raise EvaluationError(f"unknown held-out class(es) {', '.join(unknown)}; classes are {', '.join(classes)}")
    captions = store_captions(store)
    methods = list(methods or (DEFAULT_METHOD, "hybrid", *(("captions",) if captions else ()), SENTENCE_METHOD))
    clock.lap("index")

    say("image to image")
    image_to_image = image_figures(engine, k)
    clock.lap("image_to_image")
    by_method, models = {}, []
    # the sentence method once more as a folder of class folders without captions gets it
    runs = [(m, m, captions) for m in methods] + [(CLASSES_ONLY, SENTENCE_METHOD, None)] * bool(captions and SENTENCE_METHOD in methods)
    for name, method, known in runs:
        say(f"joint method {name}: training on {len(classes)} classes")
        models.append(train_for_evaluation(engine, method, (), seed, epochs, known))
        say(f"joint method {name}: zero-shot, holding out {', '.join(holdout)}")
        zero_shot_model = train_for_evaluation(engine, method, holdout, seed, epochs, known)
        by_method[name] = joint_figures(engine, models[-1], zero_shot_model, k, captions if method != "hybrid" else None)
        clock.lap(f"joint_{name}")
    say("a flat folder: no classes, no captions (labels and captions for scoring only)")
    flat = flat_figures(engine, captions, k)
    clock.lap("flat")
    say("index recall")
    recall = index_recall_figures(engine, models[0], seed, k)
    clock.lap("index_recall")

    return {
        "dataset": store.dataset,
        "encoder": store.encoder,
        "photos": len(store),
        "classes": len(classes),
        "k": k,
        "seed": seed,
        "split": {"test_size": 0.2, "stratified": True, "seed": seed, "test_photos": by_method[methods[0]]["text_to_image"]["items"]},
        "holdout_classes": holdout,
        "image_to_image": image_to_image,
        "joint": by_method,
        "flat": flat,
        "index_recall": recall,
        "seconds": clock.seconds(),
    }


class _Laps:
    """Seconds spent in each named part of the evaluation, and in all ("total")."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name], self.last = now - self.last, now

    def seconds(self) -> dict[str, float]:
        return {name: round(v, 2) for name, v in dict(self.laps, total=time.perf_counter() - self.start).items()}


def image_figures(engine, k: int = 10) -> dict[str, Any]:
    """Leave-one-out image->image retrieval for each encoder: the engine's own store, and other
    encoders' stores of the same dataset if they were already indexed (else why not)."""
    from vector_search.imaging.encoders import ENCODER_NAMES
    from vector_search.store.folders import has_store, open_store, store_dir
    from vector_search.store.spaces import ImageSpace

    store = engine.store
    figures: dict[str, Any] = {}
    for name in ENCODER_NAMES:
        if name == store.encoder:
            space, labels = engine.images, np.asarray(store.classes)
        elif has_store(store_dir(engine.features_root, name)):
            other = open_store(engine.features_root, name)
            space, labels = ImageSpace.of(other), np.asarray(other.classes)
        else:
            reason = vgg16_unavailable_reason() if name == "vgg16" else None
            hint = f"not indexed under {engine.features_root} (`vector-search index DATASET --encoder {name}`)"
            figures[name] = {"unavailable": reason or hint}
            continue
        figures[name] = dict(image_retrieval(space.vectors, labels, k), space="normalised, centred (ImageSpace)")
    return figures


def train_for_evaluation(
    engine, method: str, exclude: Sequence[str], seed: int = 0, epochs: int = 50, captions: Sequence[Sequence[str]] | None = None
) -> JointModel:
    """A joint model of the engine's store, trained (never saved) as `vector-search train` would;
    `captions` (each photo's) reach only the methods that learn from them."""
    store = engine.store
    return train(
        store.vectors, store.classes, engine.words, method=method, encoder=store.encoder,
        imagenet_classifier=engine.encoder.classifier(), exclude_classes=exclude, seed=seed, epochs=epochs,
        items=[item.path for item in store.items], captions=captions if method in ("captions", SENTENCE_METHOD) else None,
        sentences=engine.sentences if method == SENTENCE_METHOD else None,
    )


def joint_figures(engine, model, zero_shot_model, k: int = 10, captions: Sequence[Sequence[str]] | None = None) -> dict[str, Any]:
    """One joint method's figures: text->image P@k and tag accuracy on `model`'s test split,
    zero-shot text->image for the classes `zero_shot_model` never saw, over all photos, and with
    `captions` (each photo's) the held-out captions as queries (evaluation/sentences.py). Queries are
    read as the engine reads them (evaluation.sentences.query_reader)."""
    from vector_search.evaluation.sentences import query_reader, sentence_retrieval

    store = engine.store
    labels = np.asarray(store.classes)
    test = np.asarray(model.meta["split"]["test"], np.int64)
    vectors = model.transform(store.vectors)
    zero_shot_vectors = zero_shot_model.transform(store.vectors)
    classes = sorted(set(labels.tolist()))
    holdout = zero_shot_model.meta["held_out_classes"]
    reader = query_reader(engine, model.text, vectors, labels, [line for photo in captions or () for line in photo])

    tag_lists = [[w for w, _ in row] for row in model.tags(store.vectors[test], engine.tag_vocabulary(model.text, model.classes), 5)]
    zero_shot_reader = query_reader(engine, model.text, zero_shot_vectors, labels)
    zero_shot = text_to_image(class_queries(zero_shot_reader, holdout), holdout, zero_shot_vectors, labels, k)
    zero_shot["note"] = "held-out class names queried over ALL photos; their photos were never trained on"
    figures = {
        "train_seconds": model.meta["train_seconds"],
        "text_to_image": text_to_image(class_queries(reader, classes), classes, vectors[test], labels[test], k),
        "class_words_all_photos": text_to_image(class_queries(reader, classes), classes, vectors, labels, k)["mean_precision_at_k"],
        "tags": dict(tag_accuracy(tag_lists, labels[test], (1, 5)), rule="hit if any word of the class name is among the tags"),
        "zero_shot": zero_shot,
    }
    if captions:
        figures["sentences"] = sentence_retrieval(vectors, labels, captions, test, reader, k)
    return figures


def class_queries(reader: Callable[[str], np.ndarray], names: Sequence[str]) -> np.ndarray:
    """(len(names), dim) class names as queries, read by `reader` (evaluation.sentences.query_reader)."""
    return np.stack([reader(c.replace("_", " ")) for c in names])


def flat_figures(engine, captions: Sequence[Sequence[str]] | None, k: int = 10) -> dict[str, Any]:
    """What a folder with no class folders and no captions gets, in each text space: the untrained
    ConSE model over all photos; class names and (if any) first captions as queries, labels used
    only to score, the queries read against no class names (a flat folder has none)."""
    from vector_search.evaluation.sentences import query_reader, sentence_retrieval
    from vector_search.joint import conse_model

    store = engine.store
    labels, classes, everyone = np.asarray(store.classes), sorted(set(store.classes)), np.arange(len(store))
    figures: dict[str, Any] = {}
    for text in ("glove", "minilm"):
        model = conse_model(engine.encoder.classifier(), engine.words, store.encoder, engine.sentences if text == "minilm" else None)
        vectors = model.transform(store.vectors)
        reader = query_reader(engine, text, vectors, [""] * len(labels), [line for photo in captions or () for line in photo])
        row = {"class_words_all_photos": text_to_image(class_queries(reader, classes), classes, vectors, labels, k)["mean_precision_at_k"]}
        if captions:
            row["sentences"] = sentence_retrieval(vectors, labels, captions, everyone, reader, k)
        figures[text] = row
    return figures


# --- the plain-text report --------------------------------------------------------------------------


def format_report(figures: dict[str, Any]) -> str:
    """The figures of `evaluate()` as the plain-text report `vector-search evaluate` prints (a flat folder's: library.py)."""
    k = figures["k"]
    lines = class_lines(figures) if figures.get("labelled", True) else library.report_lines(figures)
    return "\n".join([*lines, "", *index_recall_lines(figures["index_recall"], k), "", f"{figures['seconds']['total']:.0f} s"])


def class_lines(figures: dict[str, Any]) -> list[str]:
    """The report of a folder of class folders, up to the index recall."""
    from vector_search.evaluation.sentences import comparison_lines, sentence_lines

    k = figures["k"]
    lines = [
        f"{figures['dataset']}: {figures['photos']} photos, {figures['classes']} classes, encoder {figures['encoder']}",
        f"split: stratified 80/20, seed {figures['seed']} ({figures['split']['test_photos']} test photos); "
        f"zero-shot held out: {', '.join(figures['holdout_classes'])}",
        "",
        "image -> image (leave-one-out, exact cosine in the searched space, relevant = same class)",
    ]
    for name, row in figures["image_to_image"].items():
        if "unavailable" in row:
            lines.append(f"  {name:20s} unavailable: {row['unavailable']}")
        else:
            lines.append(f"  {name:20s} P@{k} {row['precision_at_k']:.3f}   mAP {row['map']:.3f}")
    lines += ["", f"joint space          text->image P@{k} (test split)  tags top-1 / top-5 (test split)  zero-shot P@{k}"]
    for method, row in figures["joint"].items():
        lines.append(
            f"  {method:18s} {row['text_to_image']['mean_precision_at_k']:>10.3f}"
            f"{row['tags']['top1']:>22.3f} / {row['tags']['top5']:.3f}{row['zero_shot']['mean_precision_at_k']:>24.3f}"
        )
    lines.append("  (tags: a hit if any word of the class name is among the tags)")
    for method, row in figures["joint"].items():
        lines.append(f"  {method} per class: " + ", ".join(f"{c} {p:.1f}" for c, p in row["text_to_image"]["per_class"].items()))
        lines.append(f"  {method} zero-shot: " + ", ".join(f"{c} {p:.1f}" for c, p in row["zero_shot"]["per_class"].items()))
    lines += sentence_lines(figures)
    lines += comparison_lines(figures)
    return lines
