"""HEIC and AVIF beside JPEG: decode time at phone size, and how far a photo's vector moves when
the same photo comes as HEIC or AVIF instead of JPEG.

1. Decode: `--photos` Pascal photos upscaled to 4000x3000 (bicubic), saved as JPEG (quality 90),
   HEIC (pillow-heif, x265 preset "ultrafast", quality 90) and AVIF (Pillow's libavif, speed 10,
   quality 90); ms/photo of load_image + Lite0's preprocess on one thread: JPEG full decode,
   JPEG draft decode (min_side=256: what indexing does), HEIC, AVIF, interleaved per repeat.
2. Twins: `--twins` Pascal photos (spread over the classes) re-encoded at their own size as HEIC
   and AVIF; cosine distance of each to its JPEG's Lite0 vector (median, max), and whether the
   JPEG twin is the nearest of all the JPEGs to each HEIC/AVIF photo.

    python bench/bench_phone_formats.py [--photos 4] [--twins 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average, machine, table  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import phone_format_copy  # noqa: E402


def phone_sized(photos: list[Path], folder: Path) -> dict[str, list[Path]]:
    from PIL import Image

    made: dict[str, list[Path]] = {".jpg": [], ".heic": [], ".avif": []}
    for i, photo in enumerate(photos):
        jpeg = folder / f"{i}.jpg"
        with Image.open(photo) as image:
            size = (4000, 3000) if image.width >= image.height else (3000, 4000)
            image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(jpeg, "JPEG", quality=90)
        made[".jpg"].append(jpeg)
        for suffix in (".heic", ".avif"):
            made[suffix].append(phone_format_copy(jpeg, jpeg.with_suffix(suffix)))
    return made


def decode_times(made: dict[str, list[Path]], repeats: int, encoder) -> dict[str, float]:
    from vector_search.imaging.images import load_image

    variants = {"JPEG full": (".jpg", None), "JPEG draft": (".jpg", encoder.decode_side),
                "HEIC": (".heic", encoder.decode_side), "AVIF": (".avif", encoder.decode_side)}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeats):
        for name, (suffix, side) in variants.items():
            start = time.perf_counter()
            for path in made[suffix]:
                encoder.preprocess(load_image(path, min_side=side))
            best[name] = min(best[name], (time.perf_counter() - start) * 1000 / len(made[suffix]))
    return best


def twin_distances(photos: list[Path], folder: Path, encoder) -> dict[str, tuple[float, float, float]]:
    from vector_search.imaging.images import load_image

    def embed(paths: list[Path]) -> np.ndarray:
        vectors = encoder.embed(np.stack([encoder.preprocess(load_image(p, min_side=encoder.decode_side)) for p in paths]))
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    jpegs = embed(photos)
    found = {}
    for suffix in (".heic", ".avif"):
        twins = embed([phone_format_copy(p, folder / f"{i}{suffix}") for i, p in enumerate(photos)])
        similarity = twins @ jpegs.T
        distance = 1 - np.diag(similarity)
        first = float((similarity.argmax(1) == np.arange(len(photos))).mean())
        found[suffix] = (float(np.median(distance)), float(distance.max()), first)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--twins", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from vector_search.imaging.encoders import get_encoder

    encoder = get_encoder()
    print(machine())
    all_photos = sorted(PASCAL.rglob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        made = phone_sized(all_photos[:: len(all_photos) // args.photos][: args.photos], Path(tmp))
        times = decode_times(made, args.repeats, encoder)
        print(f"\ndecode + preprocess of {args.photos} photos at 4000x3000, ms/photo (best of {args.repeats}), load {load_average()}")
        base = times["JPEG draft"]
        print(table(["format", "ms/photo", "x JPEG draft"], [[k, v, v / base] for k, v in times.items()]))
    with tempfile.TemporaryDirectory() as tmp:
        found = twin_distances(all_photos[:: len(all_photos) // args.twins][: args.twins], Path(tmp), encoder)
    print(f"\n{args.twins} Pascal photos as HEIC/AVIF twins of their JPEG ({encoder.name}), load {load_average()}")
    print(table(["format", "median distance", "max distance", "JPEG twin first"],
                [[k, *v] for k, v in found.items()]))


if __name__ == "__main__":
    main()
