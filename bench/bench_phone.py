"""End-to-end indexing of a phone photo library: today's update_store vs the one before draft mode.

On the library bench/phone_photos.py makes (10 distinct 4000x3000 JPEGs per Pascal photo, 10,000
files), in ONE run, each variant a fresh subprocess into an empty store (bench_decode.py's child:
seconds from "start indexing" to "store saved", model build included, imports excluded):

1. "old" (update_store with full-size decoding: the path before draft mode) and "new b32"
   (update_store as shipped) on the same stratified subset, interleaved (old, new, old, new...),
   so a burst of load from other processes hits both alike: the ratio is the honest figure;
2. "new b32" on the whole library, and its figure projected to 1M photos on this machine.

The subset is `--per-photo` variants of each of the 1000 Pascal photos (phone_photos.subset_variants:
with 1, variant i mod 10 of the photo at sorted position i; every class in proportion, every
variant number alike), hard-linked into a temporary folder.

    python bench/phone_photos.py --subset-first 1     # once: /tmp/vs_phone_10k (40-60 min on 2 cores)
    python bench/bench_phone.py [--per-photo 1] [--repeats 1] [--photos /tmp/vs_phone_10k]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_decode  # noqa: E402
from _common import PASCAL, load_average, machine, median, run_child, table  # noqa: E402
from phone_photos import subset_variants  # noqa: E402


def stratified(photos: Path, dst: Path, per_photo: int) -> Path:
    """`dst` holding hard links to `per_photo` variants of each Pascal photo (see the docstring)."""
    for i, photo in enumerate(sorted(PASCAL.glob("*/*.jpg"))):
        (dst / photo.parent.name).mkdir(parents=True, exist_ok=True)
        for k in subset_variants(i, per_photo):
            name = f"{photo.stem}_v{k}.jpg"
            os.link(photos / photo.parent.name / name, dst / photo.parent.name / name)
    return dst


def run(variant: str, folder: Path, label: str) -> dict:
    result = run_child([bench_decode.__file__, "--child", variant, "--dataset", str(folder)])
    result["rate"] = result["photos"] / result["seconds"]
    print(f"  {label} {variant}: {result['photos']} photos in {result['seconds']:.1f} s ({result['rate']:.2f} photos/s), "
          f"peak RSS {result['maxrss_mib']:.0f} MiB, load {load_average()}", flush=True)  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=Path("/tmp/vs_phone_10k"), help="bench/phone_photos.py's folder")
    parser.add_argument("--per-photo", type=int, default=1, help="variants of each Pascal photo in the old/new subset")
    parser.add_argument("--repeats", type=int, default=1, help="old/new pairs on the subset (median kept)")
    parser.add_argument("--skip-all", action="store_true", help="leave out the run of new on the whole library")
    parser.add_argument("--skip-subset", action="store_true", help="leave out old vs new on the subset")
    args = parser.parse_args()

    print(f"machine: {machine()}")
    rows, rates = [], {}
    if not args.skip_subset:
        with tempfile.TemporaryDirectory(dir=args.photos.parent) as tmp:  # hard links: the same file system
            subset = stratified(args.photos, Path(tmp) / "subset", args.per_photo)
            runs: dict[str, list[dict]] = {"old": [], "new b32": []}
            for _ in range(args.repeats):
                for variant in runs:
                    runs[variant].append(run(variant, subset, "subset"))
        rates = {v: median([r["rate"] for r in rs]) for v, rs in runs.items()}
        for variant, rs in runs.items():
            peak = max(r["maxrss_mib"] for r in rs)
            rows.append([f"subset ({args.per_photo} per photo)", variant, rs[0]["photos"], rates[variant], f"{rates[variant] / rates['old']:.2f}x", peak])
    if not args.skip_all:
        everything = run("new b32", args.photos, "all")
        rates["all"] = everything["rate"]
        rows.append(["all", "new b32", everything["photos"], everything["rate"], "", everything["maxrss_mib"]])
    print()
    print(table(["photos", "variant", "n", "photos/s", "vs old", "peak RSS MiB"], rows))
    for name, rate in rates.items():
        print(f"projected to 1M phone photos on this machine ({name}): {1e6 / rate / 3600:.1f} h at {rate:.2f} photos/s")
    print(f"load average now {load_average()}")


if __name__ == "__main__":
    main()
