"""What a near-duplicate is in the encoder's features: the threshold `evaluate` uses on a flat folder.

Copies `--photos` Pascal photos (spread over every class) into a fresh flat folder with variants of
each (re-saved as JPEG quality 75 and 50, shrunk to 3/4 and 1/2, a 10-pixel crop), indexes it into
a fresh store, and prints the cosine distance (raw features, L2-normalised) of each variant to its
original, and the distance of each original to its nearest OTHER original among all 1000 Pascal
photos (distinct photos). evaluation/library.py's NEAR_DUPLICATE sits between the two.

    python bench/measure_near_duplicates.py [--photos 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, machine, table  # noqa: E402

VARIANTS = {
    "JPEG q75": lambda im: (im, 75), "JPEG q50": lambda im: (im, 50),
    "3/4 size": lambda im: (im.resize((im.width * 3 // 4, im.height * 3 // 4)), 90),
    "1/2 size": lambda im: (im.resize((im.width // 2, im.height // 2)), 90),
    "10-px crop": lambda im: (im.crop((10, 10, im.width - 10, im.height - 10)), 90),
}


def main() -> None:
    from PIL import Image

    from vector_search.engine import Engine
    from vector_search.evaluation.library import NEAR_DUPLICATE
    from vector_search.search.vectors import normalize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    args = parser.parse_args()
    every = sorted(PASCAL.glob("*/*.jpg"))
    originals = every[:: max(1, len(every) // args.photos)][: args.photos]
    with tempfile.TemporaryDirectory() as tmp:
        flat = Path(tmp) / "photos"
        flat.mkdir()
        for photo in every:  # every Pascal photo: the distinct ones' nearest neighbours
            (flat / f"{photo.parent.name}-{photo.name}").symlink_to(photo)
        for n, photo in enumerate(originals):
            with Image.open(photo) as image:
                for v, make in enumerate(VARIANTS.values()):
                    variant, quality = make(image.convert("RGB"))
                    variant.save(flat / f"variant-{n}-{v}.jpg", quality=quality)
        engine = Engine(Path(tmp) / "features")
        engine.index(flat, train=False)
        store = engine.store
        rows = {Path(p).name: i for i, p in enumerate(store.paths)}
        vectors = normalize(np.asarray(store.vectors))
        pascal = np.array([rows[f"{p.parent.name}-{p.name}"] for p in every])
        sims = vectors[pascal] @ vectors[pascal].T
        np.fill_diagonal(sims, -np.inf)
        distinct = 1 - sims.max(axis=1)
        lines = []
        for v, name in enumerate(VARIANTS):
            d = np.array([1 - vectors[rows[f"{o.parent.name}-{o.name}"]] @ vectors[rows[f"variant-{n}-{v}.jpg"]] for n, o in enumerate(originals)])
            lines.append([f"{name} of {len(originals)} photos", f"{np.median(d):.3f}", f"{d.max():.3f}", f"{np.mean(d < NEAR_DUPLICATE):.2f}"])
        lines.append([f"nearest other of {len(every)} distinct", f"{np.median(distinct):.3f}", f"min {distinct.min():.3f}",
                      f"{np.mean(distinct < NEAR_DUPLICATE):.3f}"])
    print(f"{machine()}; efficientnet-lite0, NEAR_DUPLICATE = {NEAR_DUPLICATE}")
    print(table(["pairs", "median distance", "max distance", f"share < {NEAR_DUPLICATE}"], lines))


if __name__ == "__main__":
    main()
