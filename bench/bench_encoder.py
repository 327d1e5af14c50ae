"""Encoder throughput on the Pascal Sentences photos: decode+preprocess, then embed in batches.

    python bench/bench_encoder.py [--encoder efficientnet-lite0|vgg16] [--weights random] [--limit 1000]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from vector_search.encoders import DEFAULT_ENCODER, ENCODER_NAMES, Encoder, get_encoder

DATASET = Path(__file__).resolve().parents[2] / "shared" / "pascal_sentences" / "dataset"


def load(encoder: Encoder, path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return encoder.preprocess(ImageOps.exif_transpose(image).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=ENCODER_NAMES, default=DEFAULT_ENCODER)
    parser.add_argument("--weights", default=None, help='weights file, or "random" for vgg16')
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()

    encoder = get_encoder(args.encoder, args.weights)
    paths = sorted(p for p in args.dataset.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[: args.limit]

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        batch = np.stack(list(pool.map(lambda p: load(encoder, p), paths)))
    decode = time.perf_counter() - start

    start = time.perf_counter()
    encoder.embed(batch[:1])
    build = time.perf_counter() - start

    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(batch), args.batch):
        encoder.embed(batch[i : i + args.batch])
    embed, cpu = time.perf_counter() - start, time.process_time() - cpu

    n = len(batch)
    print(f"{args.encoder}: {n} images, batch {args.batch}")
    print(f"  decode+preprocess (2 threads): {decode:6.1f} s  {n / decode:6.1f} img/s")
    print(f"  import TF + build model:       {build:6.1f} s")
    print(f"  embed:                         {embed:6.1f} s  {n / embed:6.1f} img/s  ({cpu:.1f} CPU s: other load slows it)")


if __name__ == "__main__":
    main()
