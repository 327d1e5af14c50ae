"""A phone-size photo library made from the Pascal photos: `variants` distinct 12-megapixel JPEGs per photo.

Each variant k of a photo is a seeded random crop (88-100% of each side, anywhere in the photo),
mirrored when k is odd, with a small brightness and colour change (x0.92-1.08), then upscaled
by Pillow's bicubic filter to 4000x3000 (3000x4000 if the crop is portrait) and saved as JPEG
quality 90 (~1 MB): distinct files (each a different crop, mirror or colour change of its
photo) with the Pascal photos' content, so an index over them does the decoding work of a real
phone library. Class folders are kept; variant 0 of every photo is the plain upscale (what
bench_decode's folders hold).

    python bench/phone_photos.py [--variants 10] [--processes 2] [--out /tmp/vs_phone_10k] [--subset-first 1]

`--subset-first N` makes the N variants of every photo that bench_phone.py's stratified subset
uses (`subset_variants`) before all the others, so that bench can start on them early.
Files already made are skipped (each is written under a temporary name, then renamed), so an
interrupted run resumes.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from multiprocessing import Pool
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL  # noqa: E402

PHONE_SIZE = (4000, 3000)


def phone_jpeg(image, target: Path) -> None:
    """Save `image` upscaled to a phone camera's 12 MP (landscape or portrait, as `image` is), atomically."""
    from PIL import Image

    size = PHONE_SIZE if image.width >= image.height else PHONE_SIZE[::-1]
    partial = target.with_suffix(".part")
    image.convert("RGB").resize(size, Image.Resampling.BICUBIC).save(partial, "JPEG", quality=90)
    partial.rename(target)


def variant(image, seed: str, k: int):
    """Variant k of `image`: k=0 is the photo itself, others a seeded crop, mirror and colour change."""
    from PIL import ImageEnhance, ImageOps

    if k == 0:
        return image
    rng = random.Random(f"{seed}/{k}")
    w, h = round(image.width * rng.uniform(0.88, 1.0)), round(image.height * rng.uniform(0.88, 1.0))
    x, y = rng.randint(0, image.width - w), rng.randint(0, image.height - h)
    out = image.crop((x, y, x + w, y + h))
    if k % 2:
        out = ImageOps.mirror(out)
    out = ImageEnhance.Brightness(out).enhance(rng.uniform(0.92, 1.08))
    return ImageEnhance.Color(out).enhance(rng.uniform(0.92, 1.08))


def subset_variants(i: int, per_photo: int, variants: int = 10) -> list[int]:
    """The variants of the photo at sorted position i in a subset of `per_photo` variants per
    photo: spread evenly and rotating with i, so every variant number is used alike."""
    return [(i + j * variants // per_photo) % variants for j in range(per_photo)]


def make(job: tuple[Path, Path, list[int]]) -> int:
    """Write the missing variants `ks` of one photo; return how many were written."""
    from PIL import Image

    photo, folder, ks = job
    todo = [k for k in ks if not (folder / f"{photo.stem}_v{k}.jpg").exists()]
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
        with Image.open(photo) as image:
            image = image.convert("RGB")
            for k in todo:
                phone_jpeg(variant(image, photo.name, k), folder / f"{photo.stem}_v{k}.jpg")
    return len(todo)


def phone_library(out: Path, variants: int = 10, processes: int = 2, subset_first: int = 0, src: Path = PASCAL) -> Path:
    """`out` holding `variants` phone-size variants of every photo of `src` (class folders kept)."""
    photos = sorted(src.glob("*/*.jpg"))
    first = [subset_variants(i, subset_first, variants) if subset_first else [] for i in range(len(photos))]
    jobs = [(p, out / p.parent.name, ks) for p, ks in zip(photos, first)]
    jobs += [(p, out / p.parent.name, [k for k in range(variants) if k not in ks]) for p, ks in zip(photos, first)]
    start, written = time.perf_counter(), 0
    with Pool(processes) as pool:
        for i, n in enumerate(pool.imap_unordered(make, jobs, chunksize=4), 1):
            written += n
            if i % 50 == 0 or i == len(jobs):
                rate = written / (time.perf_counter() - start)
                print(f"{i}/{len(jobs)} jobs done, {written} files written ({rate:.1f} files/s)", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=10, help="files per Pascal photo")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("/tmp/vs_phone_10k"))
    parser.add_argument("--subset-first", type=int, default=0, help="variants per photo to make first (see above)")
    args = parser.parse_args()
    phone_library(args.out, args.variants, args.processes, args.subset_first)


if __name__ == "__main__":
    main()
