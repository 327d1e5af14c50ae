"""Indexing throughput and peak memory: the classic way vs ours, on the same photos, side by side.

CLASSIC: VGG16 cut at fc2 on TensorFlow (`get_encoder("vgg16", weights="random")`: the same
architecture and cost as the ImageNet weights, which cannot be downloaded offline; speed does not
depend on the weights' values), EVERY photo decoded into one (n, 224, 224, 3) float32 array, then
one `model.predict(array)` (Keras batches it by 32).
OURS: an encoder of ours (--encoder, default: the default encoder) through `updates.update_store`
into an empty temp store: decoding in threads, streamed batches of 32, vectors saved atomically;
inference on ONNX Runtime (the cached export: it is made before the runs). OURS ON TENSORFLOW: the
same pipeline with the encoder's Keras model as a tf.function (as main ran it before ONNX Runtime).
--phone re-encodes the photos at phone size (4000x3000 JPEG, quality 90; Pascal photos are
~500x375) first: decoding and resizing then weigh as much as the network.

Each run is a fresh subprocess (honest peak RSS, ru_maxrss, and no warm model); throughput is
photos / wall seconds from "start indexing" to "vectors in hand" (model build included, Python and
the runtime's import -- TensorFlow or onnxruntime -- excluded); CPU seconds (all threads) over the
same span measure the work itself, which other load on a shared machine slows far less than the
wall clock. Medians over --repeats runs; the bar is ours >= 15x classic at every --limit.

    python bench/bench_indexing.py [--limit 200,1000] [--repeats 3] [--classic-repeats 1] [--encoder NAME] [--phone]
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
from _common import load_average, machine, median, on_tensorflow, run_child, self_maxrss_mib, subset, table  # noqa: E402
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


def ours(dataset: Path, encoder: str, runtime: str) -> dict:
    from vector_search.imaging.encoders import get_encoder
    from vector_search.store.updates import update_store

    if runtime == "tensorflow":
        import tensorflow  # noqa: F401  (imported before the clock starts, as for the classic way)
    else:
        import onnxruntime  # noqa: F401
    with tempfile.TemporaryDirectory() as root:
        start, cpu = time.perf_counter(), time.process_time()
        model = on_tensorflow(get_encoder(encoder)) if runtime == "tensorflow" else get_encoder(encoder)
        store, _ = update_store(dataset, root, encoder, encoder=model)
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


VARIANTS = {
    "classic": "classic: VGG16 fc2 on TensorFlow, all in one array, one predict",
    "ours_tf": "ours on TensorFlow",
    "ours": "ours on ONNX Runtime",
}


def measure(dataset: Path, args: argparse.Namespace) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {v: [] for v in VARIANTS}
    repeats = {"classic": args.classic_repeats, "ours_tf": args.tf_repeats, "ours": args.repeats}
    for r in range(max(repeats.values())):  # alternating, so load on a shared machine hits every variant alike
        for variant in VARIANTS:
            if r >= repeats[variant]:
                continue
            result = run_child([__file__, "--child", variant, "--dataset", str(dataset), "--encoder", args.encoder])
            runs[variant].append(result)
            print(
                f"  {variant} run {r + 1}: {result['photos']} photos in {result['seconds']:.1f} s "
                f"({result['cpu_seconds']:.1f} CPU s), peak {result['maxrss_mib']:.0f} MiB, load {load_average()}",
                flush=True,
            )
    return runs


def report(runs: dict[str, list[dict]], encoder: str) -> bool:
    """Print the table of one --limit; True when ours >= 15x classic (or classic was not run)."""
    rows, rates, peaks = [], {}, {}
    for variant, label in VARIANTS.items():
        if not runs[variant]:
            continue
        photos = runs[variant][0]["photos"]
        rates[variant] = median([photos / r["seconds"] for r in runs[variant]])
        peaks[variant] = median([r["maxrss_mib"] for r in runs[variant]])
        cpu_ms = median([1000 * r["cpu_seconds"] / photos for r in runs[variant]])
        rows.append([label if variant == "classic" else f"{label}: {encoder}, streamed update_store", photos, len(runs[variant]),
                     rates[variant], cpu_ms, peaks[variant]])
    for a, b in (("ours", "classic"), ("ours_tf", "classic"), ("ours", "ours_tf")):
        if a in rates and b in rates:
            rows.append([f"ratio {a}/{b}", "", "", f"{rates[a] / rates[b]:.1f}x", "", f"{peaks[a] / peaks[b]:.2f}x"])
    print(table(["variant", "photos", "runs", "images/s (median)", "CPU ms/image (median)", "peak RSS MiB (median)"], rows))
    if "ours" in rates and "classic" in rates:
        passed = rates["ours"] >= 15 * rates["classic"]
        print(f"bar: ours >= 15x classic throughput: {'PASS' if passed else 'FAIL'}")
        return passed
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", default="200,1000", help="photos to index, comma-separated: one table each "
                        "(spread evenly over the classes; default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of ours on ONNX Runtime")
    parser.add_argument("--tf-repeats", type=int, default=1, help="runs of ours on TensorFlow (0: skip)")
    parser.add_argument("--classic-repeats", type=int, default=1, help="runs of the classic way (minutes each on 2 cores; 0: skip)")
    parser.add_argument("--encoder", choices=ENCODER_NAMES, default=DEFAULT_ENCODER, help="our encoder (default: %(default)s)")
    parser.add_argument("--phone", action="store_true", help="index phone-size copies (4000x3000) of the photos")
    parser.add_argument("--child", choices=tuple(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        runtime = "tensorflow" if args.child == "ours_tf" else "onnx"
        result = classic(args.dataset) if args.child == "classic" else ours(args.dataset, args.encoder, runtime)
        result["maxrss_mib"] = self_maxrss_mib()
        print(json.dumps(result))
        return

    print(f"machine: {machine()}")
    from vector_search.imaging.encoders import get_encoder

    get_encoder(args.encoder).load()  # the one-time ONNX export, if this machine never made it: outside every clock
    passed = []
    for limit in [int(n) for n in args.limit.split(",")]:
        with tempfile.TemporaryDirectory() as tmp:
            dataset = subset(Path(tmp) / "photos", limit)
            if args.phone:
                dataset = phone_size(dataset, Path(tmp) / "phone")
            print(f"\n--limit {limit}:", flush=True)
            runs = measure(dataset, args)
        print()
        passed.append(report(runs, args.encoder))
    if len(passed) > 1:
        print(f"\nbar at every limit: {'PASS' if all(passed) else 'FAIL'}")
    print(f"load average now {load_average()}")


if __name__ == "__main__":
    main()
