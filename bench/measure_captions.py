"""Choose the caption model's settings (joint/captions.py) on validation photos inside the training part.

The stratified 80% training part of Pascal Sentences (seed 0, as `train` splits it) is split
again 80/20 (seed 0): the captions model is fitted on the first part and measured on the second,
the validation photos, with their captions; the test split is never looked at. For each ridge
strength and caption weight it prints, on the validation photos: class-P@10 of their captions
over the fitted + validation photos, recall@1/5/10 and median rank of each caption's own photo
among the validation photos, single-word text->image P@10, and tags top-5 read from the joint
vectors with captions mixed in (the reason tags are read from the blend part).

    python bench/measure_captions.py [--store /tmp/f10] [--dataset ../shared/pascal_sentences/dataset]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine, pascal_features  # noqa: E402

from vector_search import joint  # noqa: E402
from vector_search.datasets.pascal import default_captions_dir, read_captions  # noqa: E402
from vector_search.evaluation.evaluate import class_queries, tag_accuracy, text_to_image  # noqa: E402
from vector_search.evaluation.sentences import sentence_retrieval  # noqa: E402
from vector_search.text.words import load_words  # noqa: E402


def main() -> None:
    store, head, args = pascal_features(__doc__.split("\n\n")[0])
    labels, words = np.asarray(store.classes), load_words()
    captions = read_captions(default_captions_dir(args.dataset), [item.path for item in store.items])[0]
    train, _ = joint.split(labels, 0.2, 0)
    rows = train  # the validation experiment sees the training part only
    x, y, caps = store.vectors[rows], labels[rows], [captions[i] for i in rows]
    classes = sorted(set(y.tolist()))
    vocabulary = joint.tag_vocabulary(words)
    print(f"{machine()}\n{len(rows)} training photos: fitted on 80%, measured on the 20% validation photos")
    print(f"{'ridge':>8} {'weight':>6} | {'class-P@10':>10} {'R@1':>6} {'R@5':>6} {'R@10':>6} {'median':>6} | "
          f"{'word P@10':>9} {'tags top-5 (mixed)':>18}")
    for ridge in (1e3, 1e4, 1e5):
        for weight in (0.0, 0.2, 0.3, 0.5, 0.7):
            model = joint.train(x, y, words, method="captions", encoder=store.encoder, imagenet_classifier=head, captions=caps,
                                settings=joint.CaptionSettings(ridge=ridge, weight=weight))
            val = np.asarray(model.meta["split"]["test"])
            vectors = model.transform(x)
            s = sentence_retrieval(vectors, y, caps, val, words)
            word = text_to_image(class_queries(vectors, y, classes, words), classes, vectors[val], y[val])["mean_precision_at_k"]
            tags = tag_accuracy([[w for w, _ in r] for r in joint.tags(vectors[val], vocabulary, 5)], y[val], (5,))["top5"]
            print(f"{ridge:8.0e} {weight:6.1f} | {s['class_precision_at_10_all_photos']:10.3f} {s['recall_at_1']:6.3f} "
                  f"{s['recall_at_5']:6.3f} {s['recall_at_10']:6.3f} {s['median_rank']:6.1f} | {word:9.3f} {tags:18.3f}", flush=True)


if __name__ == "__main__":
    main()
