"""What `vector-search evaluate` measures on a flat folder (a photo library with no class folders).

Image->image and text->image precision need classes, and a flat folder has none: nothing is
invented in their place. What can be measured without labels is: duplicates (identical files, and
photos whose nearest other photo is closer than NEAR_DUPLICATE in the encoder's features), what the
photos say of themselves (dates, cameras: what the filters can use), how the tags spread over the
vocabulary, and the recall of each approximate index against exact search.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from vector_search.search.vectors import normalize

NEAR_DUPLICATE = 0.10  # cosine distance of raw features: re-saved, shrunk, cropped copies 0.007-0.053, distinct Pascal photos >= 0.134 (bench/measure_near_duplicates.py)
SAMPLE = 2_000  # photos whose nearest neighbour and tags are computed (all of a smaller library)
BLOCK = 8_192  # rows compared at once
TAGS = 5  # tags per photo
COMMON_TAGS = 10  # the most frequent tags reported


def library_figures(engine, seed: int = 0, k: int = 10) -> dict[str, Any]:
    """The figures only a flat folder has, as one JSON-ready dict (report_lines prints them); evaluate.evaluate
    adds the index recall."""
    store = engine.store
    live = np.arange(len(store)) if store.live is None else np.flatnonzero(store.live)
    rng = np.random.default_rng(seed)
    sample = live if len(live) <= SAMPLE else np.sort(rng.choice(live, SAMPLE, replace=False))
    return {
        "dataset": store.dataset,
        "encoder": store.encoder,
        "photos": int(len(live)),
        "labelled": False,
        "k": k,
        "note": "a flat folder has no classes to say which answers are relevant",
        "duplicates": duplicate_figures(store, live, sample),
        "metadata": metadata_figures(store, live),
        "tags": tag_figures(engine, sample),
    }


def duplicate_figures(store, live: np.ndarray, sample: np.ndarray) -> dict[str, Any]:
    """Identical files (same content hash) among the live photos, and for the `sample`, the cosine
    distance of each one's nearest other photo (exact, raw features): how many are near-duplicates."""
    hashes = store.column("sha256").take(pa.array(live))
    counts = pc.value_counts(hashes).field("counts").to_numpy() if len(hashes) else np.zeros(0, np.int64)
    queries = normalize(np.asarray(store.vectors[sample], np.float32))
    nearest = np.full(len(sample), -np.inf, np.float32)
    for start in range(0, len(live), BLOCK):
        block = live[start : start + BLOCK]
        sims = queries @ normalize(np.asarray(store.vectors[block], np.float32)).T
        sims[sample[:, None] == block[None, :]] = -np.inf  # a photo is not its own neighbour
        nearest = np.maximum(nearest, sims.max(axis=1))
    distances = 1.0 - nearest[np.isfinite(nearest)]
    return {
        "identical_files": int((counts[counts > 1] - 1).sum()),
        "queries": int(len(distances)),
        "near_duplicate_distance": NEAR_DUPLICATE,
        "with_near_duplicate": float(np.mean(distances < NEAR_DUPLICATE)) if len(distances) else 0.0,
        "nearest_distance_median": float(np.median(distances)) if len(distances) else None,
    }


def metadata_figures(store, live: np.ndarray) -> dict[str, Any]:
    """The share of photos with a date taken and with a camera, and how many cameras."""
    rows = pa.array(live)
    taken, cameras = store.column("taken").take(rows), store.column("camera").take(rows)
    share = (lambda column: float(pc.sum(pc.is_valid(column)).as_py() or 0) / len(live)) if len(live) else (lambda column: 0.0)
    return {"with_date": share(taken), "with_camera": share(cameras), "cameras": len([c for c in pc.unique(cameras).to_pylist() if c])}


def tag_figures(engine, sample: np.ndarray) -> dict[str, Any]:
    """The top TAGS tags of each sampled photo with the engine's joint model: how many distinct words
    they use, and the most common ones with the share of photos carrying each."""
    model, store = engine.joint, engine.store
    rows = model.tags(np.asarray(store.vectors[sample], np.float32), engine.tag_vocabulary(model.text, model.classes), TAGS)
    counts = Counter(word for row in rows for word, _ in row)
    return {
        "model": model.method,
        "photos": len(rows),
        "per_photo": TAGS,
        "distinct": len(counts),
        "most_common": {word: round(n / max(len(rows), 1), 4) for word, n in counts.most_common(COMMON_TAGS)},
    }


def report_lines(figures: dict[str, Any]) -> list[str]:
    """The figures of library_figures as lines of the plain-text report (evaluate.format_report)."""
    dup, meta, tagged = figures["duplicates"], figures["metadata"], figures["tags"]
    median = "-" if dup["nearest_distance_median"] is None else f"{dup['nearest_distance_median']:.3f}"
    return [
        f"{figures['dataset']}: {figures['photos']} photos, no class folders, encoder {figures['encoder']}",
        f"image -> image and text -> image precision: not measurable ({figures['note']})",
        "",
        f"duplicates: {dup['identical_files']} identical files; {dup['with_near_duplicate']:.1%} of {dup['queries']} photos have a "
        f"near-duplicate (nearest other photo under {dup['near_duplicate_distance']} cosine distance; median nearest {median})",
        f"metadata: {meta['with_date']:.1%} of photos have a date taken, {meta['with_camera']:.1%} a camera ({meta['cameras']} cameras)",
        f"tags ({tagged['model']}, top {tagged['per_photo']} of {tagged['photos']} photos): {tagged['distinct']} distinct words; most common: "
        + ", ".join(f"{word} {share:.0%}" for word, share in tagged["most_common"].items()),
    ]
