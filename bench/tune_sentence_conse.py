"""Choose the untrained sentence ConSE's settings (what a flat folder gets: no class folders, no
captions) on a validation half of the Pascal photos, never on the figures that are scored.

The knobs: how many WordNet ancestors an ImageNet class's vector adds (depth, and the weight
decay ** steps; joint/sentence.py HYPERNYM_DEPTH, HYPERNYM_DECAY) and how many top classes ConSE
mixes (T; joint/conse.py CONSE_TOP, shared with GloVe's ConSE). Each setting is scored by the mean
average precision of the 20 class words (read as `search` reads them) over a stratified half of
the photos (seed 1); the other half's and all photos' P@10 are printed beside, never used to choose.

    python bench/tune_sentence_conse.py [--store features]
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, table  # noqa: E402

DEPTHS = (0, 1, 2, 3, 4)
DECAYS = (0.5, 0.7, 1.0)
TOPS = (5, 10, 20)


def main() -> None:
    from vector_search.engine import Engine
    from vector_search.evaluation.evaluate import average_precisions, precisions_at_k, ranked_relevance
    from vector_search.joint import conse, sentence
    from vector_search.joint.data import split
    from vector_search.text.query import sentence_query_vector

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("features"))
    args = parser.parse_args()
    engine = Engine(args.store)
    labels = np.asarray(engine.store.classes)
    classes = sorted(set(labels.tolist()))
    w, b = engine.encoder.classifier()
    probs = conse.softmax(np.asarray(engine.store.vectors, np.float32) @ w + b)
    queries = np.stack([sentence_query_vector(c.replace("_", " "), engine.sentences).vector for c in classes])
    tune, other = split(labels, 0.5, seed=1)

    def score(vectors: np.ndarray, rows: np.ndarray) -> tuple[float, float]:
        rel = ranked_relevance(queries, classes, vectors[rows], labels[rows])
        return float(average_precisions(rel).mean()), float(precisions_at_k(rel, 10).mean())

    rows = []
    for depth, decay in itertools.product(DEPTHS, DECAYS):
        if depth == 0 and decay != DECAYS[0]:
            continue
        label_vectors = sentence.imagenet_prompt_vectors(engine.sentences, depth, decay)
        for top in TOPS:
            vectors = conse.convex_combination(probs, label_vectors, top)
            (tune_map, _), (_, other_p10), (_, all_p10) = (score(vectors, r) for r in (tune, other, np.arange(len(labels))))
            rows.append([depth, decay if depth else "-", top, tune_map, other_p10, all_p10])
    rows.sort(key=lambda r: -r[3])
    print(table(["depth", "decay", "T", "mAP, validation half (chooses)", "P@10, other half", "P@10, all photos"], rows))
    now = next(r for r in rows if r[:3] == [sentence.HYPERNYM_DEPTH, sentence.HYPERNYM_DECAY, conse.CONSE_TOP])
    print(f"chosen: depth {rows[0][0]}, decay {rows[0][1]}, T {rows[0][2]}; "
          f"the code's (depth {now[0]}, decay {now[1]}, T {now[2]}): validation mAP {now[3]:.3f}; load average {load_average()}")


if __name__ == "__main__":
    main()
