"""Indexing throughput and peak memory: the classic way vs ours, on the same photos, side by side.

CLASSIC: VGG16 cut at fc2 (`get_encoder("vgg16", weights="random")`: same architecture and cost
as the ImageNet weights, which cannot be downloaded offline), EVERY photo decoded into one
(n, 224, 224, 3) float32 array, then one `model.predict(array)` (Keras batches it by 32).
OURS: the default encoder (EfficientNet-Lite0) through `store.update_store` into an empty temp
store: decoding in threads, streamed batches of 32, vectors saved atomically.

Each run is a fresh subprocess (honest peak RSS, ru_maxrss, and no warm model); throughput is
photos / wall seconds from "start indexing" to "vectors in hand" (model build included, Python
and TensorFlow import excluded). Medians over --repeats runs; the bar is ours >= 5x classic.

    python bench/bench_indexing.py [--limit 1000] [--repeats 3] [--classic-repeats 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, median, run_child, self_maxrss_mib, subset, table  # noqa: E402


def classic(dataset: Path) -> dict:
    import numpy as np
    import tensorflow  # noqa: F401  (imported before the clock starts, as for ours)

    from vector_search.encoders import get_encoder
    from vector_search.images import find_images, load_image

    start = time.perf_counter()
    encoder = get_encoder("vgg16", weights="random")
    paths, _ = find_images(dataset)
    array = np.stack([encoder.preprocess(load_image(dataset / p)) for p in paths])  # all photos in memory
    loaded = time.perf_counter()
    features = encoder._build_model().predict(array, batch_size=32, verbose=0)
    end = time.perf_counter()
    assert features.shape == (len(paths), 4096)
    return {"photos": len(paths), "seconds": end - start, "decode_seconds": loaded - start}


def ours(dataset: Path) -> dict:
    import tensorflow  # noqa: F401

    from vector_search.store import update_store

    with tempfile.TemporaryDirectory() as root:
        start = time.perf_counter()
        store, _ = update_store(dataset, root)
        end = time.perf_counter()
    return {"photos": len(store), "seconds": end - start, "encoder": store.encoder}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="photos to index (spread evenly over the classes; default all 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours")
    parser.add_argument("--classic-repeats", type=int, default=1, help="runs of the classic way (minutes each on 2 cores)")
    parser.add_argument("--child", choices=("classic", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = (classic if args.child == "classic" else ours)(args.dataset)
        result["maxrss_mib"] = self_maxrss_mib()
        print(json.dumps(result))
        return

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = subset(Path(tmp) / "photos", args.limit)
        runs: dict[str, list[dict]] = {"classic": [], "ours": []}
        for variant, repeats in (("classic", args.classic_repeats), ("ours", args.repeats)):
            for r in range(repeats):
                result = run_child([__file__, "--child", variant, "--dataset", str(dataset)])
                runs[variant].append(result)
                print(f"  {variant} run {r + 1}: {result['photos']} photos in {result['seconds']:.1f} s, peak {result['maxrss_mib']:.0f} MiB", flush=True)

    rows = []
    summary = {}
    for variant, label in (("classic", "classic: VGG16 fc2, all in one array, one predict"), ("ours", "ours: Lite0, streamed update_store")):
        photos = runs[variant][0]["photos"]
        rate = median([photos / r["seconds"] for r in runs[variant]])
        peak = median([r["maxrss_mib"] for r in runs[variant]])
        summary[variant] = (rate, peak)
        rows.append([label, photos, len(runs[variant]), rate, peak])
    ratio_rate = summary["ours"][0] / summary["classic"][0]
    ratio_peak = summary["ours"][1] / summary["classic"][1]
    rows.append(["ratio ours/classic", "", "", f"{ratio_rate:.1f}x", f"{ratio_peak:.2f}x"])
    print()
    print(table(["variant", "photos", "runs", "images/s (median)", "peak RSS MiB (median)"], rows))
    print(f"bar: ours >= 5x classic throughput: {'PASS' if ratio_rate >= 5 else 'FAIL'}; load average now {load_average()}")


if __name__ == "__main__":
    main()
