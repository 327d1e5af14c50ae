"""Training time per run: the classic way (CNN run every epoch) vs ours (cached features), side by side.

CLASSIC: the DeViSE-style head (the hybrid's Dense 2000 -> BN -> ReLU -> Dropout -> Dense 50 ->
BN, cosine loss, SGD) trained END TO END on photos: every batch goes through a FROZEN
EfficientNet-Lite0 (our encoder's ImageNet weights; VGG16 would be ~5x slower still) and then the
head. The photos are decoded into one array beforehand (not timed: generous to the classic way).
Only ONE epoch is timed; a classic run of the same 50 epochs is estimated as 50 x that epoch.
OURS: `joint.train` on the store's cached features of the same photos: method "hybrid" (the
same head, 50 epochs, best epoch kept) and "blend" (the default).

Medians over --repeats runs; ratio = classic run (50 epochs, estimated) / our run; bar >= 100x.

    python bench/bench_training.py [--limit 1000] [--repeats 3] [--store features]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, median, table  # noqa: E402

EPOCHS = 50


def pick(paths: list[str], limit: int | None) -> list[int]:
    """Positions of the first limit/classes photos of each class (all when no limit)."""
    by_class: dict[str, list[int]] = {}
    for i, p in sorted(enumerate(paths), key=lambda ip: ip[1]):
        by_class.setdefault(p.split("/")[0], []).append(i)
    per = None if limit is None else max(1, limit // len(by_class))
    return sorted(i for rows in by_class.values() for i in rows[:per])


def classic_epoch(photos: np.ndarray, targets: np.ndarray, seed: int) -> float:
    """Seconds of one epoch of frozen Lite0 + the DeViSE head, trained end to end on photos."""
    import keras
    from keras import layers

    from vector_search.imaging.encoders import get_encoder
    from vector_search.joint.hybrid import HybridSettings

    s = HybridSettings()  # the hybrid's defaults

    keras.utils.set_random_seed(seed)
    cnn = get_encoder("efficientnet-lite0").keras_model()
    cnn.trainable = False
    inputs = keras.Input(photos.shape[1:])
    h = layers.Dense(s.hidden)(cnn(inputs, training=False))
    h = layers.Dropout(s.dropout)(layers.Activation("relu")(layers.BatchNormalization()(h)))
    outputs = layers.BatchNormalization()(layers.Dense(targets.shape[1])(h))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.SGD(s.learning_rate, momentum=s.momentum, nesterov=True), keras.losses.CosineSimilarity())
    start = time.perf_counter()
    model.fit(photos, targets, epochs=1, batch_size=s.batch_size, verbose=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="photos (spread evenly over the classes; default all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--store", default="features", help="feature store with the cached Lite0 features")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from vector_search import joint
    from vector_search.imaging.encoders import get_encoder
    from vector_search.imaging.images import load_image
    from vector_search.store.folders import open_store
    from vector_search.text.vocab import class_vectors
    from vector_search.text.words import load_words

    print(f"machine: {machine()}")
    store = open_store(args.store, "efficientnet-lite0")
    rows = pick([item.path for item in store.items], args.limit)
    labels = np.asarray(store.classes)[rows]
    features = store.vectors[rows]
    words = load_words()
    classes = sorted(set(labels.tolist()))
    train_pos, _ = joint.split(labels, 0.2, args.seed)  # the 80% a run trains on
    encoder = get_encoder("efficientnet-lite0")

    print(f"decoding {len(train_pos)} training photos for the classic run (not timed) ...", flush=True)
    photos = np.stack([encoder.preprocess(load_image(Path(store.dataset) / store.items[rows[i]].path)) for i in train_pos])
    targets = class_vectors(classes, words)[np.searchsorted(classes, labels[train_pos])]

    times: dict[str, list[float]] = {"classic_epoch": [], "hybrid": [], "blend": []}
    for r in range(args.repeats):
        times["classic_epoch"].append(classic_epoch(photos, targets, args.seed))
        for method in ("hybrid", "blend"):
            model = joint.train(features, labels, words, method=method, encoder=store.encoder,
                                imagenet_classifier=encoder.classifier(), seed=args.seed, epochs=EPOCHS)
            times[method].append(model.meta["train_seconds"])
        print(f"  run {r + 1}: classic epoch {times['classic_epoch'][-1]:.1f} s, hybrid {times['hybrid'][-1]:.1f} s, blend {times['blend'][-1]:.1f} s", flush=True)

    epoch = median(times["classic_epoch"])
    classic_run = EPOCHS * epoch
    table_rows = [
        ["classic: frozen Lite0 + DeViSE head on photos, 1 epoch (measured)", len(train_pos), epoch, ""],
        [f"classic: same, {EPOCHS} epochs (= {EPOCHS} x 1 epoch, estimated)", len(train_pos), classic_run, "1x"],
        [f"ours: cached features, hybrid {EPOCHS} epochs", len(train_pos), median(times["hybrid"]), f"{classic_run / median(times['hybrid']):.0f}x"],
        ["ours: cached features, blend (default)", len(train_pos), median(times["blend"]), f"{classic_run / median(times['blend']):.0f}x"],
    ]
    print()
    print(table(["run", "train photos", f"seconds (median of {args.repeats})", "classic/ours per run"], table_rows))
    for method in ("hybrid", "blend"):
        ratio = classic_run / median(times[method])
        print(f"bar ours({method}) >= 100x faster per run: {'PASS' if ratio >= 100 else 'FAIL'} ({ratio:.0f}x)")
    print(f"load average now {load_average()}")


if __name__ == "__main__":
    main()
