"""Good tags with no training step: a fresh labelled folder, `index` only, then `tag` every photo.

Copies `--per-class` Pascal photos of each of `--classes` into a fresh folder (class folders),
indexes it into a fresh store with a fresh models folder (no `train`: `index` trains the default
joint model itself when the folder has class folders and no model exists, engine.py), and counts
the photos whose class word is among their top-5 tags. `--no-auto-train` measures the old way
(index only, ConSE). Both in one run by default, side by side.

    python bench/measure_first_tags.py [--classes cat,bus,boat,dog] [--per-class 25]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL, load_average, machine  # noqa: E402


def class_words(name: str) -> set[str]:
    return set(name.replace("_", " ").split())


def measure(classes: list[str], per_class: int, auto_train: bool) -> tuple[float, float, str]:
    """(share of photos with their class word in the top-5 tags, seconds of `index`, the model used)."""
    from vector_search.engine import Engine

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        for name in classes:
            (folder / name).mkdir(parents=True)
            for photo in sorted((PASCAL / name).iterdir())[:per_class]:
                shutil.copy(photo, folder / name / photo.name)
        os.environ["VECTOR_SEARCH_MODELS"] = str(Path(tmp) / "models")
        engine = Engine(Path(tmp) / "features")
        start = time.perf_counter()
        report = engine.index(folder, train=auto_train)
        seconds = time.perf_counter() - start
        for note in report.notes:
            print("   ", note)
        hits = 0
        for path in engine.store.paths:
            words = {w for r in engine.tags(path, 5) for w in r.item.split()}
            hits += bool(words & class_words(Path(path).parent.name))
        return hits / len(engine.store), seconds, engine.joint.method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="cat,bus,boat,dog")
    parser.add_argument("--per-class", type=int, default=25)
    parser.add_argument("--no-auto-train", action="store_true", help="measure only the index-only way (ConSE)")
    args = parser.parse_args()
    classes = args.classes.split(",")
    print(machine())
    runs = [False] if args.no_auto_train else [False, True]
    for auto in runs:
        share, seconds, method = measure(classes, args.per_class, auto)
        print(f"{'index trains' if auto else 'index only  '}: class word in top-5 tags for {share:.2f} of "
              f"{len(classes) * args.per_class} photos ({method}); index took {seconds:.1f} s; load {load_average()}")


if __name__ == "__main__":
    main()
