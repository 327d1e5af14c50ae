"""Choose how tags are read in the sentence space (joint/tagging.py SentenceTagSettings) on validation
photos inside the training part, never on the test split.

The 800 training photos of the 80/20 split (seed 0) are split into 5 stratified folds; each fold's
photos get their tags from a sentence model (class classifier + ConSE, as `train` fits it; tags do
not read the captions' map) fitted on the other 4, so every training photo has out-of-fold tags.
Each setting (entries embedded as "a photo of a ..." or bare; the model's class words offered or
not; the offset against generic entries; the closeness above which a word repeats a chosen tag) is
scored by how often a word of the photo's class is among its top 5 tags (then top 1).

Then how many tags name what the encoder sees (tagging.OPEN_TAGS, OPEN_BELOW): scored on the same
out-of-fold photos (seen classes) and on photos of unseen classes (4 groups of 5 classes, each
group's training photos tagged by a model fitted on the other 15 classes' training photos); chosen:
the most unseen-class tags while seen-class top-5 stays within SEEN_TOLERANCE of no such tags.

    python bench/tune_tags.py [--store features]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, table  # noqa: E402

PENALTIES = (0.0, 0.15, 0.3, 0.6)
DISTINCTS = (None, 0.9, 0.8, 0.7, 0.6)
FOLDS = 5
OPEN = ((0, 2.0), (1, 2.0), (2, 2.0), (3, 2.0), (2, 0.95), (2, 0.9), (2, 0.85), (3, 0.9))  # (open tags, below); 2.0: always
SEEN_TOLERANCE = 0.005


def main() -> None:
    from sklearn.model_selection import StratifiedKFold

    from vector_search.engine import Engine
    from vector_search.evaluation.evaluate import tag_accuracy
    from vector_search.joint import blend, sentence, tagging
    from vector_search.joint.data import split

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("features"))
    args = parser.parse_args()
    engine = Engine(args.store)
    features, labels = np.asarray(engine.store.vectors, np.float32), np.asarray(engine.store.classes)
    classes = sorted(set(labels.tolist()))
    training, _ = split(labels, 0.2, seed=0)
    positions = np.searchsorted(classes, labels)
    settings = sentence.SentenceSettings()
    arrays = dict(sentence.conse_arrays(engine.encoder.classifier(), engine.sentences, features.shape[1]),
                  class_vectors=sentence.class_prompt_vectors(classes, engine.sentences))
    meta = {"settings": asdict(settings), "conse_top": sentence.CONSE_TOP}
    vectors = np.zeros((len(training), engine.sentences.dim), np.float32)
    for fit, held in StratifiedKFold(FOLDS, shuffle=True, random_state=0).split(training, labels[training]):
        part = dict(arrays, **blend.fit_classifier(features[training[fit]], positions[training[fit]], settings.classifier_c, 0))
        vectors[held] = sentence.tag_transform(part, meta, features[training[held]])

    rows = []
    for prompted, class_words, penalty in itertools.product((True, False), (True, False), PENALTIES):
        vocabulary = tagging.sentence_tag_vocabulary(
            engine.words, engine.sentences, classes, settings=tagging.SentenceTagSettings(prompted, class_words, penalty, None))
        for distinct in DISTINCTS:
            lists = [[w for w, _ in row] for row in tagging.tags(vectors, tagging.TagVocabulary(vocabulary.words, vocabulary.units, vocabulary.offsets, distinct), 5)]
            accuracy = tag_accuracy(lists, labels[training], (1, 5))
            rows.append([prompted, class_words, penalty, str(distinct), accuracy["top5"], accuracy["top1"]])
    rows.sort(key=lambda r: (-r[4], -r[5]))
    print(table(["prompted", "class words", "generic penalty", "distinct", "top-5 (chooses)", "top-1"], rows))
    print(f"chosen: {rows[0][:4]} (out-of-fold, {len(training)} training photos, {FOLDS} folds); load average {load_average()}")
    open_tags(engine, features, labels, classes, training, vectors, arrays, meta)


def open_tags(engine, features, labels, classes, training, seen_vectors, arrays, meta) -> None:
    """The table of OPEN (module docstring)."""
    from vector_search.evaluation.evaluate import tag_accuracy
    from vector_search.joint import blend, conse, sentence, tagging

    cases = [(training, seen_vectors, conse.transform(arrays, meta, features[training]), classes)]
    for group in range(4):
        unseen = classes[group::4]
        known = [c for c in classes if c not in unseen]
        fit, held = training[~np.isin(labels[training], unseen)], training[np.isin(labels[training], unseen)]
        part = dict(arrays, class_vectors=sentence.class_prompt_vectors(known, engine.sentences),
                    **blend.fit_classifier(features[fit], np.searchsorted(known, labels[fit]), sentence.SentenceSettings().classifier_c, 0))
        cases.append((held, sentence.tag_transform(part, meta, features[held]), conse.transform(part, meta, features[held]), known))
    rows = []
    for count, below in OPEN:
        scores = []
        for rows_of, vectors, view, known in cases:
            vocabulary = tagging.sentence_tag_vocabulary(engine.words, engine.sentences, known)
            merged = tagging.merge_tags(tagging.tags(vectors, vocabulary, 5), tagging.tags(view, vocabulary, 5), 5,
                                        np.sum(vectors * view, axis=1), count, below)
            scores.append((tag_accuracy([[w for w, _ in row] for row in merged], labels[rows_of], (5,))["top5"], len(rows_of)))
        unseen = sum(s * n for s, n in scores[1:]) / sum(n for _, n in scores[1:])
        rows.append([count, "always" if below > 1 else below, round(scores[0][0], 3), round(unseen, 3)])
    print(table(["open tags", "below cosine", "seen top-5", "unseen top-5"], rows))
    floor = rows[0][2] - SEEN_TOLERANCE
    print(f"chosen: {max((r for r in rows if r[2] >= floor), key=lambda r: r[3])[:2]} (seen top-5 >= {floor:.3f}); load average {load_average()}")


if __name__ == "__main__":
    main()
