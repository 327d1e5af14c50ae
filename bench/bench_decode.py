"""Decoding at the speed of the network: full-size JPEG decoding vs draft mode, and the batch size.

Makes (once, outside the repo) a folder of N Pascal photos re-encoded at phone size (4000x3000,
or 3000x4000 for portrait photos; Pillow, quality 90; distinct files), then in ONE run, on those
and on the same N original Pascal photos (500x375):

- decode-only ms/photo (load_image + the encoder's preprocess, one thread): full decode
  (min_side=None, the old path) vs draft mode (min_side=encoder.decode_side), interleaved;
- end-to-end indexing photos/s and peak RSS, each run a fresh subprocess into an empty store:
  "sequential" (full decode of a batch, then the model on it: no overlap), "sequential draft"
  (the same with draft mode), "old" (update_store with full decoding, decode overlapped with the
  model: the path before draft mode), "new b16/b32/b64" (update_store as shipped, draft mode,
  at batch sizes 16, 32, 64). Seconds from "start indexing" to "store saved", model
  build included, Python and TensorFlow imports excluded.

    python bench/bench_decode.py [--limit 200] [--repeats 1] [--phone-dir /tmp/vs_phone_200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine, median, print_child_result, run_child, subset, table  # noqa: E402
from phone_photos import phone_jpeg  # noqa: E402

VARIANTS = ("sequential", "sequential draft", "old", "new b16", "new b32", "new b64")


def phone_folder(dst: Path, pascal: Path) -> Path:
    """`dst` holding every photo of `pascal` re-encoded at phone size (skips files already made)."""
    from PIL import Image

    for photo in sorted(pascal.rglob("*.jpg")):
        target = dst / photo.relative_to(pascal)
        if target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(photo) as image:
            phone_jpeg(image, target)
    return dst


def decode_only(dataset: Path, repeats: int) -> dict:
    """ms/photo of load_image + preprocess on one thread, full vs draft, interleaved per repeat."""
    from vector_search.imaging.encoders import get_encoder
    from vector_search.imaging.images import find_images, load_image

    encoder = get_encoder()
    paths = [dataset / p for p in find_images(dataset)[0]]
    best = {"full": float("inf"), "draft": float("inf")}
    for _ in range(repeats):
        for name, side in (("full", None), ("draft", encoder.decode_side)):
            start = time.perf_counter()
            for p in paths:
                encoder.preprocess(load_image(p, min_side=side))
            best[name] = min(best[name], (time.perf_counter() - start) * 1000 / len(paths))
    return best


def index(dataset: Path, variant: str) -> dict:
    import numpy as np
    import tensorflow  # noqa: F401  (imported before the clock starts)

    from vector_search.imaging.encoders import get_encoder
    from vector_search.imaging.images import find_images, load_image
    from vector_search.store.updates import update_store

    encoder = get_encoder()
    start = time.perf_counter()
    if variant.startswith("sequential"):
        side = encoder.decode_side if variant == "sequential draft" else None
        paths = find_images(dataset)[0]
        photos = 0
        for i in range(0, len(paths), 32):
            batch = np.stack([encoder.preprocess(load_image(dataset / p, min_side=side)) for p in paths[i : i + 32]])
            photos += len(encoder.embed(batch))
    else:
        if variant == "old":
            encoder.decode_side = None  # this instance decodes every photo at full size
        batch_size = 32 if variant == "old" else int(variant.split("b")[1])
        with tempfile.TemporaryDirectory() as root:
            store, _ = update_store(dataset, root, encoder=encoder, batch_size=batch_size)
            photos = len(store)
    return {"photos": photos, "seconds": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="photos per folder (spread over the classes)")
    parser.add_argument("--phone-dir", type=Path, help="where to keep the phone-size photos (default /tmp/vs_phone_<limit>)")
    parser.add_argument("--decode-repeats", type=int, default=3, help="decode-only passes (best kept)")
    parser.add_argument("--repeats", type=int, default=1, help="end-to-end runs of each variant (median kept)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="end-to-end variants to run, comma-separated")
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        print_child_result(index(args.dataset, args.child))
        return

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        pascal = subset(Path(tmp) / "pascal", args.limit)
        phone = phone_folder(args.phone_dir or Path(tempfile.gettempdir()) / f"vs_phone_{args.limit}", pascal)
        folders = {"phone 4000x3000": phone, "pascal 500x375": pascal}
        rows = []
        for label, folder in folders.items():
            ms = decode_only(folder, args.decode_repeats)
            rows.append([label, ms["full"], ms["draft"], f"{ms['full'] / ms['draft']:.2f}x"])
        print("\ndecode + preprocess, one thread (best of %d passes)" % args.decode_repeats)
        print(table(["photos", "full ms/photo", "draft ms/photo", "speed-up"], rows))
        print(f"load average now {load_average()}\n", flush=True)

        rows = []
        for label, folder in folders.items():
            runs: dict[str, list[dict]] = {v: [] for v in args.variants.split(",")}
            for r in range(args.repeats):  # round-robin, so a burst of load hits every variant alike
                for variant in runs:
                    result = run_child([__file__, "--child", variant, "--dataset", str(folder)])
                    runs[variant].append(result)
                    print(f"  {label} {variant} run {r + 1}: {result['photos']} photos in {result['seconds']:.1f} s, "
                          f"peak {result['maxrss_mib']:.0f} MiB, load {load_average()}", flush=True)
            rates = {v: median([x["photos"] / x["seconds"] for x in rs]) for v, rs in runs.items()}
            base = "old" if "old" in rates else next(iter(rates))
            for variant, rs in runs.items():
                seconds = ", ".join(f"{x['seconds']:.1f}" for x in rs)
                peak = median([x["maxrss_mib"] for x in rs])
                rows.append([label, variant, rs[0]["photos"], seconds, rates[variant], f"{rates[variant] / rates[base]:.2f}x", peak])
    print()
    print(table(["photos", "variant", "n", "seconds", "photos/s (median)", f"vs {base}", "peak RSS MiB"], rows))
    print(f"load average now {load_average()}")


if __name__ == "__main__":
    main()
