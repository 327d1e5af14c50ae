"""Choose how tags are read in the sentence space (joint/tagging.py SentenceTagSettings) on validation
photos inside the training part, never on the test split.

The 800 training photos of the 80/20 split (seed 0) are split into 5 stratified folds; each fold's
photos get their tags from a sentence model (class classifier + ConSE, as `train` fits it; tags do
not read the captions' map) fitted on the other 4, so every training photo has out-of-fold tags.
Each setting (entries embedded as "a photo of a ..." or bare; the model's class words offered or
not; the offset against generic entries; the closeness above which a word repeats a chosen tag) is
scored by how often a word of the photo's class is among its top 5 tags (then top 1).

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


if __name__ == "__main__":
    main()
