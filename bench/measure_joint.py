"""Measure the joint image-word space methods on a labelled photo folder (Pascal Sentences).

For each method (hybrid, conse, blend, and captions: the blend with the caption model,
joint/captions.py, when the dataset has captions) it prints:
- text->image: mean precision@10 over the class names, ranking the held-out 20% of the photos
  (stratified split, seed 0) by cosine to the class name's word vector;
- tags: how often a word of the photo's class is the top-1 / among the top-5 tags of a held-out
  photo (tags = nearest words of the filtered vocabulary, see joint.tag_vocabulary);
- zero-shot: 5 classes removed from training entirely; mean precision@10 of those class names
  over all photos, for several random 5-class sets;
- training time (the hybrid: 50 epochs seeing 1000 photos each).

--tune picks the ImageNet label rule (WordNet ancestors) and the blend settings on validation
data only, all inside the 80% train part: text->image and tags on out-of-fold predictions
(5-fold CV), zero-shot on 10 other 5-class sets (each must pass, so the worst set counts).
--reweight measures class re-weighting of image features (query.class_weights).

    python bench/measure_joint.py --sets 10 --methods sentence    # the default model (sentence space, captions)
    python bench/measure_joint.py [--dataset ../shared/pascal_sentences/dataset] [--encoder NAME] [--tune] [--reweight]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import PASCAL  # noqa: E402

from vector_search import joint  # noqa: E402
from vector_search.evaluation import evaluate
from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES  # noqa: E402
from vector_search.joint import blend, conse  # noqa: E402
from vector_search.joint.tagging import sentence_tag_vocabulary  # noqa: E402
from vector_search.search.index import normalize  # noqa: E402
from vector_search.text.query import sentence_query_vector  # noqa: E402
from vector_search.text.sentence_encoder import sentence_encoder  # noqa: E402
from vector_search.text.vocab import FREQUENT_WORDS, class_vectors  # noqa: E402
from vector_search.text.words import WordVectors, load_words  # noqa: E402

BARS = {"text_to_image": 0.70, "tags_top5": 0.75, "zero_shot": 0.50}


def load_features(dataset: Path, features_root: Path, encoder: str) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray], str, list]:
    """Features (from the feature store, embedding only what is missing), class labels, ImageNet head,
    the name of the encoder that made the features, and each photo's captions (none: [])."""
    from vector_search.datasets.pascal import default_captions_dir, read_captions
    from vector_search.imaging.encoders import get_encoder
    from vector_search.store.updates import update_store

    store, _ = update_store(dataset, features_root, encoder)
    folder = default_captions_dir(dataset)
    captions = read_captions(folder, [item.path for item in store.items])[0] if folder else []
    return store.vectors, np.array(store.classes), get_encoder(store.encoder).classifier(), store.encoder, captions


def class_sets(n_classes: int, count: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(n_classes, 5, replace=False).tolist()) for _ in range(count)]


def tag_hits(model: joint.JointModel, features: np.ndarray, labels: np.ndarray, vocab: joint.TagVocabulary) -> tuple[float, float]:
    """Fraction of photos whose top-1 / top-5 tags (the model's, JointModel.tags) contain a word of their class."""
    acc = evaluate.tag_accuracy([[w for w, _ in r] for r in model.tags(features, vocab, 5)], labels)
    return acc["top1"], acc["top5"]


def text_to_image(joint_vectors: np.ndarray, labels: np.ndarray, classes: list[str], words: WordVectors, sentences=None) -> float:
    """Mean precision@10 of the class names' word vectors (with `sentences`, the sentence encoder: their
    vectors as `search` reads them) over the joint vectors."""
    if sentences is None:
        queries = class_vectors(classes, words)
    else:
        queries = np.stack([sentence_query_vector(c.replace("_", " "), sentences).vector for c in classes])
    return evaluate.text_to_image(queries, classes, joint_vectors, labels, k=10)["mean_precision_at_k"]


def report_method(
    method: str, features, labels, head, encoder, words, vocab, zs_sets, classes, captions, blend_settings: joint.BlendSettings,
) -> dict[str, float]:
    """The "captions" and "sentence" methods are given each photo's captions (joint/captions.py,
    joint/sentence.py: the default model, in the sentence encoder's space); the others none.
    `blend_settings` are the blend's, also inside the captions method."""
    captions = captions if method in ("captions", "sentence") else None
    settings = {"blend": blend_settings, "captions": joint.CaptionSettings(blend=blend_settings)}.get(method)
    sentences = sentence_encoder() if method == "sentence" else None
    if sentences is not None:
        vocab = sentence_tag_vocabulary(words, sentences, classes)
    start = time.perf_counter()
    model = joint.train(
        features, labels, words, method=method, encoder=encoder, imagenet_classifier=head, captions=captions, settings=settings,
        sentences=sentences,
    )
    seconds = time.perf_counter() - start
    test = np.array(model.meta["split"]["test"]) if method != "conse" else joint.split(labels, 0.2, 0)[1]
    vectors = model.transform(features)
    t2i = text_to_image(vectors[test], labels[test], classes, words, sentences)
    top1, top5 = tag_hits(model, features[test], labels[test], vocab)
    zero_shot = []
    for held in zs_sets:
        names = [classes[i] for i in held]
        if method == "conse":  # trains nothing: the zero-shot model is the model itself
            zs_vectors = vectors
        else:
            zs_vectors = joint.train(
                features, labels, words, method=method, encoder=encoder, imagenet_classifier=head, exclude_classes=names,
                captions=captions, settings=settings, sentences=sentences,
            ).transform(features)
        zero_shot.append(text_to_image(zs_vectors, labels, names, words, sentences))
    row = {"text_to_image": t2i, "tags_top1": top1, "tags_top5": top5, "zero_shot": float(np.mean(zero_shot)), "train_s": seconds}
    passed = all(row[k] >= v for k, v in BARS.items())
    held = sum(z >= BARS["zero_shot"] for z in zero_shot)
    print(
        f"{method:8s} | {t2i:5.3f} | {top1:5.3f} / {top5:5.3f} | {row['zero_shot']:5.3f}, worst {min(zero_shot):.2f}, "
        f"{held}/{len(zero_shot)} sets >= {BARS['zero_shot']:.2f} ({' '.join(f'{z:.2f}' for z in zero_shot)}) | "
        f"{seconds:6.1f} s | {'PASS' if passed else 'fail'}",
        flush=True,
    )
    return row


def time_hybrid(features: np.ndarray, labels: np.ndarray, encoder: str, words: WordVectors) -> None:
    """50 epochs of the hybrid over all photos (900 fitted + 100 validated each epoch)."""
    start, cpu = time.perf_counter(), time.process_time()
    model = joint.train(features, labels, words, method="hybrid", encoder=encoder, test_size=0.0)
    print(f"hybrid, 50 epochs over {len(features)} x {features.shape[1]}: {time.perf_counter() - start:.1f} s wall, "
          f"{time.process_time() - cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f} "
          f"(best epoch {model.meta['history']['best_epoch']})")


def tune_blend(features, labels, head, words, vocab, classes, zs_sets) -> None:
    """Grid over the ImageNet label rule and the blend settings, scored on validation data only
    (never the test split); ranked by the worst margin to the bars, zero-shot taken at its worst set."""
    from sklearn.model_selection import StratifiedKFold

    train_pos, _ = joint.split(labels, 0.2, 0)
    x, lab = features[train_pos], labels[train_pos]
    y = np.searchsorted(classes, lab)
    targets = class_vectors(classes, words)
    hypernyms = [(0.0, 0)] + list(itertools.product((0.5, 0.7, 1.0), (2, 4)))
    conse_by_rule = {h: conse.conse_vectors(x, head, joint.imagenet_label_vectors(words, *h)) for h in hypernyms}
    grid = {
        "classifier_c": (0.03, 0.1, 1.0), "top_classes": (1, 2, 3), "alpha": (0.5, 1.0, 2.0), "gamma": (1.0, 2.0),
    }
    probs: dict[tuple, np.ndarray] = {}
    folds = list(StratifiedKFold(5, shuffle=True, random_state=0).split(x, y))
    for c in grid["classifier_c"]:
        out_of_fold = np.zeros((len(x), len(classes)))  # each photo predicted by the fold that did not see it
        for fit, val in folds:
            out_of_fold[val] = blend.classifier_probabilities(blend.fit_classifier(x[fit], y[fit], c, 0), x[val])
        probs[(c, "oof")] = out_of_fold
        for s, held in enumerate(zs_sets):
            keep = ~np.isin(y, held)
            seen = np.unique(y[keep])
            p = np.zeros((len(x), len(classes)))
            p[:, seen] = blend.classifier_probabilities(blend.fit_classifier(x[keep], np.searchsorted(seen, y[keep]), c, 0), x)
            probs[(c, "zs", s)] = p
    results = []
    for h, (c, m, a, g) in itertools.product(hypernyms, itertools.product(*grid.values())):
        v = blend.blend_vectors(probs[(c, "oof")], targets, conse_by_rule[h], m, a, g)
        t2i, top5 = text_to_image(v, lab, classes, words), evaluate.tag_accuracy([[w for w, _ in r] for r in joint.tags(v, vocab, 5)], lab)["top5"]
        zs = []
        for s, held in enumerate(zs_sets):
            v = blend.blend_vectors(probs[(c, "zs", s)], targets, conse_by_rule[h], m, a, g)  # zero columns = unseen
            zs.append(text_to_image(v, lab, [classes[i] for i in held], words))
        row = (t2i, top5, min(zs))
        margin = min(r - b for r, b in zip(row, BARS.values()))
        settings = {"hypernym_decay": h[0], "hypernym_depth": h[1], "classifier_c": c, "top_classes": m, "alpha": a, "gamma": g}
        results.append((margin, row, float(np.mean(zs)), settings))
    results.sort(key=lambda r: -r[0])
    print("validation (inside the train part: out-of-fold for text->image and tags, 10 other zero-shot sets): best 10 by worst margin to the bars")
    for margin, (t2i, top5, zs_min), zs_mean, settings in results[:10]:
        print(f"  {settings}: text->image {t2i:.3f}, tags top-5 {top5:.3f}, zero-shot mean {zs_mean:.3f} worst {zs_min:.3f}, margin {margin:+.3f}")


def measure_reweight(features: np.ndarray, labels: np.ndarray, head: tuple[np.ndarray, np.ndarray]) -> None:
    """Share of a photo's 10 nearest photos that show class X, without and with re-weighting."""
    from vector_search.imaging.imagenet import find_class
    from vector_search.text.query import class_weights, reweight

    print("re-weighting: mean share of the 10 nearest photos (over all 1000 queries) in the Pascal class")
    for pascal, imagenet in (("cat", "Siamese cat"), ("dog", "golden retriever"), ("car", "sports car"), ("bird", "goldfinch")):
        cid = find_class(imagenet)
        shares = {}
        for mode in ("none", "keep", "clip"):
            x = features if mode == "none" else reweight(features, class_weights(head[0], cid, mode))
            u = normalize(x)
            sims = u @ u.T
            np.fill_diagonal(sims, -np.inf)
            top = np.argsort(-sims, axis=1)[:, :10]
            shares[mode] = float(np.mean(labels[top] == pascal))
        print(f"  {pascal:5s} by {imagenet!r} ({cid}): " + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, default=PASCAL)
    parser.add_argument("--store", type=Path, default=ROOT / "features", help="feature store root (default: %(default)s)")
    parser.add_argument("--encoder", choices=ENCODER_NAMES, default=DEFAULT_ENCODER, help="image encoder (default: %(default)s)")
    parser.add_argument("--sets", type=int, default=5, help="random 5-class zero-shot sets (default: %(default)s)")
    parser.add_argument("--methods", default="hybrid,conse,blend,captions", help="of these and sentence (default: %(default)s)")
    parser.add_argument("--tune", action="store_true", help="choose the blend settings on validation data")
    parser.add_argument("--reweight", action="store_true", help="measure class re-weighting")
    parser.add_argument("--blend", type=json.loads, default={}, help='override blend settings, e.g. \'{"alpha": 1}\'')
    args = parser.parse_args()

    blend_settings = joint.BlendSettings(**args.blend)
    features, labels, head, encoder, captions = load_features(args.dataset, args.store, args.encoder)
    words = load_words()
    vocab = joint.tag_vocabulary(words)
    classes = sorted(set(labels.tolist()))
    print(f"{len(features)} photos, {len(classes)} classes, {features.shape[1]}-d features; "
          f"tag vocabulary {len(vocab.words)} of the {FREQUENT_WORDS} most frequent words")
    test_sets = class_sets(len(classes), args.sets, seed=0)
    if args.tune:
        tune_blend(features, labels, head, words, vocab, classes, class_sets(len(classes), 10, seed=1))
    if args.reweight:
        measure_reweight(features, labels, head)
    print("zero-shot sets: " + "; ".join(",".join(classes[i] for i in s) for s in test_sets))
    print("method  | t->i  | tags top-1/top-5 | zero-shot: mean of sets, worst, sets passing (per set) | train | bars (zero-shot: the mean)")
    for method in args.methods.split(","):
        report_method(method, features, labels, head, encoder, words, vocab, test_sets, classes, captions, blend_settings)
    if "hybrid" in args.methods:
        time_hybrid(features, labels, encoder, words)


if __name__ == "__main__":
    main()
