"""Indexing throughput and peak memory: the classic way vs ours, on the same photos, side by side.

CLASSIC: VGG16 cut at fc2 (`get_encoder("vgg16", weights="random")`: same architecture and cost
as the ImageNet weights, which cannot be downloaded offline), EVERY photo decoded into one
(n, 224, 224, 3) float32 array, then one `model.predict(array)` (Keras batches it by 32).
OURS: an encoder of ours (--encoder, default: the default encoder) through `updates.update_store`
into an empty temp store: decoding in threads, streamed batches of 32, vectors saved atomically.
--phone re-encodes the photos at phone size (4000x3000 JPEG, quality 90; Pascal photos are
~500x375) first: decoding and resizing then weigh as much as the network.

Each run is a fresh subprocess (honest peak RSS, ru_maxrss, and no warm model); throughput is
photos / wall seconds from "start indexing" to "vectors in hand" (model build included, Python
and TensorFlow import excluded); CPU seconds (all threads) over the same span measure the work
itself, which other load on a shared machine slows far less than the wall clock. Medians over
--repeats runs; the bar is ours >= 5x classic.

    python bench/bench_indexing.py [--limit 1000] [--repeats 3] [--classic-repeats 1] [--encoder NAME] [--phone]
    python bench/bench_indexing.py --classic-repeats 0 --encoder efficientnet-lite2   # ours only
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, median, run_child, self_maxrss_mib, subset, table  # noqa: E402
from phone_photos import phone_jpeg  # noqa: E402


def classic(dataset: Path) -> dict:
    import numpy as np
    import tensorflow  # noqa: F401  (imported before the clock starts, as for ours)

    from vector_search.imaging.encoders import get_encoder
    from vector_search.imaging.images import find_images, load_image

    start, cpu = time.perf_counter(), time.process_time()
    encoder = get_encoder("vgg16", weights="random")
    paths, _ = find_images(dataset)
    array = np.stack([encoder.preprocess(load_image(dataset / p)) for p in paths])  # all photos in memory
    loaded = time.perf_counter()
    features = encoder.keras_model().predict(array, batch_size=32, verbose=0)
    end = time.perf_counter()
    assert features.shape == (len(paths), 4096)
    return {"photos": len(paths), "seconds": end - start, "cpu_seconds": time.process_time() - cpu, "decode_seconds": loaded - start}


def ours(dataset: Path, encoder: str) -> dict:
    import tensorflow  # noqa: F401

    from vector_search.store.updates import update_store

    with tempfile.TemporaryDirectory() as root:
        start, cpu = time.perf_counter(), time.process_time()
        store, _ = update_store(dataset, root, encoder)
        end, cpu = time.perf_counter(), time.process_time() - cpu
    return {"photos": len(store), "seconds": end - start, "cpu_seconds": cpu, "encoder": store.encoder}


def phone_size(src: Path, dst: Path) -> Path:
    """`dst` holding every photo of `src` (class folders) upscaled to a phone camera's 12 MP, as JPEG."""
    from PIL import Image

    for photo in sorted(src.glob("*/*")):
        (dst / photo.parent.name).mkdir(parents=True, exist_ok=True)
        with Image.open(photo) as image:
            phone_jpeg(image, dst / photo.parent.name / photo.name)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="photos to index (spread evenly over the classes; default all 1000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours")
    parser.add_argument("--classic-repeats", type=int, default=1, help="runs of the classic way (minutes each on 2 cores; 0: skip)")
    parser.add_argument("--encoder", choices=ENCODER_NAMES, default=DEFAULT_ENCODER, help="our encoder (default: %(default)s)")
    parser.add_argument("--phone", action="store_true", help="index phone-size copies (4000x3000) of the photos")
    parser.add_argument("--child", choices=("classic", "ours"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = classic(args.dataset) if args.child == "classic" else ours(args.dataset, args.encoder)
        result["maxrss_mib"] = self_maxrss_mib()
        print(json.dumps(result))
        return

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = subset(Path(tmp) / "photos", args.limit)
        if args.phone:
            dataset = phone_size(dataset, Path(tmp) / "phone")
        runs: dict[str, list[dict]] = {"classic": [], "ours": []}
        for variant, repeats in (("classic", args.classic_repeats), ("ours", args.repeats)):
            for r in range(repeats):
                result = run_child([__file__, "--child", variant, "--dataset", str(dataset), "--encoder", args.encoder])
                runs[variant].append(result)
                print(
                    f"  {variant} run {r + 1}: {result['photos']} photos in {result['seconds']:.1f} s "
                    f"({result['cpu_seconds']:.1f} CPU s), peak {result['maxrss_mib']:.0f} MiB",
                    flush=True,
                )

    labels = {"classic": "classic: VGG16 fc2, all in one array, one predict", "ours": f"ours: {args.encoder}, streamed update_store"}
    rows = []
    summary = {}
    for variant, label in labels.items():
        if not runs[variant]:
            continue
        photos = runs[variant][0]["photos"]
        rate = median([photos / r["seconds"] for r in runs[variant]])
        peak = median([r["maxrss_mib"] for r in runs[variant]])
        cpu_ms = median([1000 * r["cpu_seconds"] / photos for r in runs[variant]])
        summary[variant] = (rate, peak)
        rows.append([label, photos, len(runs[variant]), rate, cpu_ms, peak])
    if len(summary) == 2:
        ratio_rate = summary["ours"][0] / summary["classic"][0]
        ratio_peak = summary["ours"][1] / summary["classic"][1]
        rows.append(["ratio ours/classic", "", "", f"{ratio_rate:.1f}x", "", f"{ratio_peak:.2f}x"])
    print()
    print(table(["variant", "photos", "runs", "images/s (median)", "CPU ms/image (median)", "peak RSS MiB (median)"], rows))
    if len(summary) == 2:
        print(f"bar: ours >= 5x classic throughput: {'PASS' if ratio_rate >= 5 else 'FAIL'}")
    print(f"load average now {load_average()}")

if __name__ == "__main__":
    main()
