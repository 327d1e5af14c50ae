"""Measure sentence queries on Pascal Sentences: each caption of a photo, used as a query, ranks
ALL 1000 photos in the joint space (the default blend model, trained on the stratified 80%, seed 0);
class-P@10 = the fraction of the first 10 photos of the caption's photo class.

It prints a table of query-weighting variants (sentences.py), each on the captions of the
training photos (where settings are chosen) and of the held-out 20% (the figure reported):
plain mean of the words (the old query vector), stop words dropped, SIF weights for several a,
the collection spread at several sharpnesses, and with or without class synonyms. Then
single-word queries of class synonyms (synonyms.py), P@10 over the held-out photos.

    python bench/measure_sentences.py [--store /tmp/f10] [--dataset ../shared/pascal_sentences/dataset]
"""

from __future__ import annotations

import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, pascal_features  # noqa: E402

from vector_search import joint  # noqa: E402
from vector_search.datasets.pascal import captions  # noqa: E402
from vector_search.search.index import normalize  # noqa: E402
from vector_search.text.sentences import CLASS_WEIGHT, SHARPNESS, SIF_A, Collection, weigh_term  # noqa: E402
from vector_search.text.tokens import known_words  # noqa: E402
from vector_search.text.words import WordVectors, load_words  # noqa: E402

SYNONYM_QUERIES = {
    "aeroplane": ["plane", "airplane", "aircraft", "jet"],
    "tv_monitor": ["television", "tv"],
    "motorbike": ["motorcycle"],
    "sofa": ["couch"],
    "car": ["automobile"],
    "cow": ["cattle"],
    "bus": ["coach"],
}


def class_p10(query_vectors: np.ndarray, query_labels: np.ndarray, joint_vectors: np.ndarray, labels: np.ndarray) -> float:
    sims = normalize(query_vectors) @ normalize(joint_vectors).T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :10]
    return float(np.mean(labels[top] == query_labels[:, None]))


def plain_mean(text: str, words: WordVectors) -> np.ndarray:
    """The query vector before sentences.py: the plain mean of the known words' raw vectors."""
    known = known_words(text, words)[0]
    return np.mean([words.vector(w) for w in known], axis=0) if known else np.zeros(words.dim, np.float32)


def weighted(text: str, words: WordVectors, collection: Collection | None, **settings) -> np.ndarray:
    known = known_words(text, words)[0]
    return weigh_term(known, words, collection, **settings)[0] if known else np.zeros(words.dim, np.float32)


def main() -> None:
    store, head, _ = pascal_features(__doc__.split("\n\n")[0])
    labels = np.asarray(store.classes)
    words = load_words()
    model = joint.train(store.vectors, labels, words, encoder=store.encoder, imagenet_classifier=head)
    vectors = model.transform(store.vectors)
    test = np.asarray(model.meta["split"]["test"])
    train = np.setdiff1d(np.arange(len(labels)), test)
    full = Collection.of(vectors, labels.tolist(), words)
    no_synonyms = dataclasses.replace(full, synonyms={})
    no_classes = dataclasses.replace(full, synonyms={}, own={})

    parts = {}
    for name, rows in (("train", train), ("held-out", test)):
        texts = [(text, labels[i]) for i in rows for text in captions(store.paths[i])]
        parts[name] = ([t for t, _ in texts], np.asarray([c for _, c in texts]))
    print(f"{machine()}\ncaptions: {len(parts['train'][0])} of training photos, {len(parts['held-out'][0])} held out")

    variants = [("plain mean (before)", lambda t: plain_mean(t, words)),
                ("stop words dropped", lambda t: weighted(t, words, None, sif_a=1e9))]
    for a in (1e-3, 1e-4, 3e-5):
        variants.append((f"+ SIF a={a:g}", lambda t, a=a: weighted(t, words, None, sif_a=a)))
    for sharpness in (1, 4, 8, 12):
        variants.append((f"+ spread, sharpness {sharpness}, a={SIF_A:g}",
                         lambda t, s=sharpness: weighted(t, words, no_classes, sharpness=s)))
    variants.append((f"+ class words weigh >= {CLASS_WEIGHT:g} x the heaviest, sharpness {SHARPNESS}",
                     lambda t: weighted(t, words, no_synonyms)))
    for class_weight in (0, 1, 3):
        variants.append((f"+ class synonyms, class weight {class_weight}",
                         lambda t, c=class_weight: weighted(t, words, full, class_weight=c)))
    print(f"\n{'query vector':<52} {'train':>7} {'held-out':>9} {'ms/query':>9}")
    for name, make in variants:
        row = []
        for texts, query_labels in parts.values():
            start = time.perf_counter()
            queries = np.asarray([make(t) for t in texts], np.float32)
            ms = 1000 * (time.perf_counter() - start) / len(texts)
            row.append(class_p10(queries, query_labels, vectors, labels))
        print(f"{name:<52} {row[0]:7.4f} {row[1]:9.4f} {ms:9.2f}")

    print("\nclass synonyms, single words, P@10 over the held-out photos: without -> with synonyms")
    for cls, queries in SYNONYM_QUERIES.items():
        for q in queries:
            row = [class_p10(weighted(q, words, c)[None], np.asarray([cls]), vectors[test], labels[test])
                   for c in (no_synonyms, full)]
            print(f"  {q:<12} -> {cls:<11} {row[0]:.2f} -> {row[1]:.2f}  ({full.synonyms.get(q, '-')})")


if __name__ == "__main__":
    main()
