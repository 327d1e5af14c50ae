"""Encoder throughput on the Pascal Sentences photos: decode+preprocess, then embed in batches.

    python bench/bench_encoder.py [--encoder efficientnet-lite0|vgg16] [--weights random] [--limit 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vector_search.imaging.encoders import DEFAULT_ENCODER, ENCODER_NAMES, get_encoder
from vector_search.imaging.images import find_images, load_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", choices=ENCODER_NAMES, default=DEFAULT_ENCODER)
    parser.add_argument("--weights", default=None, help='weights file, or "random" for vgg16')
    parser.add_argument("--dataset", type=Path, default=PASCAL)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()

    encoder = get_encoder(args.encoder, args.weights)
    paths = find_images(args.dataset)[0][: args.limit]

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        batch = np.stack(list(pool.map(lambda p: encoder.preprocess(load_image(args.dataset / p)), paths)))
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
