"""Where the time of a `vector-search index` goes: process start, planning, decoding, resizing,
inference, store writes, index build; TensorFlow vs ONNX Runtime inference in one run.

Each run is a fresh subprocess running the real CLI (`main(["index", ...])`) into an empty store,
with timers wrapped around the stages (cumulative seconds; decoding and resizing run on the
decoding threads, overlapped with inference, so their sum can exceed the wall time):

  process start + exit   interpreter start, imports, exit (the child's wall minus main())
  plan                   find_images + a SHA-256 of every file (updates._plan_update)
  model load             TensorFlow: import + Keras build + trace; ONNX: session open (export cached)
  inference              Encoder.embed, model load excluded (main thread)
  waiting for decoding   main thread blocked on the next decoded batch (what overlap does not hide)
  decode / resize        load_image / encoder.preprocess, summed over the decoding threads
  store writes           Store.append (+ compaction)
  index build            ImageSpace.of (the image index built and saved by `index`)

--sweep instead times inference alone on decoded photos: batch sizes, and one session on every
core vs one single-thread session per core (threads), ONNX Runtime vs TensorFlow.

    python bench/bench_pipeline.py [--limit 1000] [--repeats 1]
    python bench/bench_pipeline.py --sweep [--limit 256]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, load_average, machine, median, on_tensorflow, subset, table  # noqa: E402

STAGES = ["process start + exit", "plan", "model load", "inference", "waiting for decoding", "decode", "resize", "store writes",
          "index build", "main() wall", "child wall"]


def use_tensorflow() -> None:
    """Make the Lite members run on TensorFlow, as main did before ONNX Runtime (Encoder.keras_function)."""
    from vector_search.imaging.encoders.base import Encoder
    from vector_search.imaging.encoders.efficientnet_lite import LiteEncoder

    LiteEncoder._load = Encoder.keras_function  # the CLI makes its own encoder: patched in the class


def instrument() -> dict[str, float]:
    """Wrap the stages in cumulative timers; returns the dict they add to."""
    from vector_search.imaging import embedding, images
    from vector_search.imaging.encoders.base import Encoder
    from vector_search.imaging.encoders.efficientnet_lite import LiteEncoder
    from vector_search.store import updates
    from vector_search.store.spaces import ImageSpace
    from vector_search.store.store import Store

    seconds = dict.fromkeys(STAGES, 0.0)
    lock = threading.Lock()

    def timed(stage: str, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    seconds[stage] += time.perf_counter() - start
        return wrapper

    def timed_iter(fn):
        def wrapper(*args, **kwargs):
            it = fn(*args, **kwargs)
            while True:
                start = time.perf_counter()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    seconds["waiting for decoding"] += time.perf_counter() - start
                yield item
        return wrapper

    embed = Encoder.embed
    LiteEncoder._load = timed("model load", LiteEncoder._load)  # ONNX Runtime's, or TensorFlow's after use_tensorflow()

    def embed_without_load(self, batch):
        start, before = time.perf_counter(), seconds["model load"]
        try:
            return embed(self, batch)
        finally:
            seconds["inference"] += time.perf_counter() - start - (seconds["model load"] - before)

    Encoder.embed = embed_without_load
    images.load_image = timed("decode", images.load_image)
    LiteEncoder.preprocess = timed("resize", LiteEncoder.preprocess)
    embedding.iter_batches = timed_iter(embedding.iter_batches)
    updates._plan_update = timed("plan", updates._plan_update)
    Store.append = timed("store writes", Store.append)
    Store.compacted = timed("store writes", Store.compacted)
    ImageSpace.of = classmethod(timed("index build", ImageSpace.of.__func__))
    return seconds


def child(dataset: Path, variant: str) -> dict:
    start = time.perf_counter()
    if variant == "tensorflow":
        use_tensorflow()
    seconds = instrument()
    from vector_search.cli import main

    with tempfile.TemporaryDirectory() as store:
        main_start = time.perf_counter()
        code = main(["index", str(dataset), "--store", store])
        seconds["main() wall"] = time.perf_counter() - main_start
    assert code == 0
    seconds["imports"] = main_start - start
    return seconds


def run(dataset: Path, variant: str) -> dict:
    argv = [sys.executable, __file__, "--child", variant, "--dataset", str(dataset)]
    start = time.perf_counter()
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"child {variant} failed with {proc.returncode}")
    seconds = json.loads(proc.stdout.strip().splitlines()[-1])
    seconds["child wall"] = wall
    seconds["process start + exit"] = wall - seconds["main() wall"]
    return seconds


def rate(encoders: list, photos, batch: int) -> float:
    """Photos/s embedding `photos` in batches of `batch`, one worker thread per encoder, batches dealt round robin."""
    chunks = [photos[i: i + batch] for i in range(0, len(photos), batch)]
    start = time.perf_counter()
    with ThreadPoolExecutor(len(encoders)) as pool:
        list(pool.map(lambda i: [encoders[i].embed(c) for c in chunks[i:: len(encoders)]], range(len(encoders))))
    return len(photos) / (time.perf_counter() - start)


def sweep(dataset: Path) -> None:
    """Inference alone on decoded photos: photos/s by batch size and thread layout, both runtimes."""
    import numpy as np

    from vector_search.imaging.encoders import get_encoder
    from vector_search.imaging.images import find_images, load_image

    paths, _ = find_images(dataset)
    encoder = get_encoder()
    photos = np.stack([encoder.preprocess(load_image(dataset / p)) for p in paths])
    layouts = {
        "ONNX, 1 session x 2 threads": [get_encoder(threads=2)],
        "ONNX, 2 sessions x 1 thread": [get_encoder(threads=1), get_encoder(threads=1)],
        "ONNX, 1 session x 1 thread": [get_encoder(threads=1)],
    }
    layouts["TensorFlow (all cores)"] = [on_tensorflow(get_encoder())]
    for encoders in layouts.values():
        for e in encoders:
            e.embed(photos[:2])  # load and warm up outside the clock
    rows = []
    for batch in (1, 8, 16, 32, 64):
        rows.append([batch, *(rate(encoders, photos, batch) for encoders in layouts.values())])
        print(f"  batch {batch} done (load {load_average()})", flush=True)
    print(table(["batch", *[f"{name} photos/s" for name in layouts]], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, help="photos (spread evenly over the classes; default all 1000, --sweep 256)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant, alternating")
    parser.add_argument("--sweep", action="store_true", help="time inference alone by batch size and thread layout")
    parser.add_argument("--child", choices=("tensorflow", "onnx"), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.dataset, args.child)))
        return

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        dataset = subset(Path(tmp) / "photos", args.limit or (256 if args.sweep else None))
        photos = sum(1 for _ in dataset.glob("*/*"))
        if args.sweep:
            sweep(dataset)
            print(f"load average now {load_average()}")
            return
        runs: dict[str, list[dict]] = {"tensorflow": [], "onnx": []}
        for r in range(args.repeats):
            for variant in runs:
                runs[variant].append(run(dataset, variant))
                print(f"  {variant} run {r + 1}: {runs[variant][-1]['child wall']:.1f} s (load {load_average()})", flush=True)
    rows = []
    for stage in STAGES:
        tf, ort = (median([r[stage] for r in runs[v]]) for v in runs)
        rows.append([stage, tf, ort, f"{tf / ort:.1f}x" if ort > 0.005 else ""])
    print(f"\n{photos} photos, `vector-search index` in a fresh process, seconds (median of {args.repeats}):")
    print(table(["stage", "TensorFlow (before)", "ONNX Runtime (now)", "ratio"], rows))
    tf_rate, ort_rate = (photos / median([r["child wall"] for r in runs[v]]) for v in runs)
    print(f"end to end: TensorFlow {tf_rate:.1f} photos/s, ONNX Runtime {ort_rate:.1f} photos/s ({ort_rate / tf_rate:.2f}x)")
    print(f"load average now {load_average()}")


if __name__ == "__main__":
    main()
