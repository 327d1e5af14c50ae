"""Helpers shared by the bench scripts: machine description, subsets of the photos, tables."""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vector_search import config

if TYPE_CHECKING:
    import numpy as np

    from vector_search.store.store import Store

ROOT = Path(__file__).resolve().parents[1]
PASCAL = config.pascal_root() / "dataset"


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next((int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({cpu}), {mem / 2**20:.0f} GiB RAM, load average {load_average()}"


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as "0.52 0.61 0.70"."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def subset(dst: Path, limit: int | None) -> Path:
    """`dst` holding the first limit/classes photos of each Pascal class (copies; all if no limit)."""
    classes = sorted(p for p in PASCAL.iterdir() if p.is_dir())
    per_class = None if limit is None else max(1, limit // len(classes))
    for folder in classes:
        (dst / folder.name).mkdir(parents=True, exist_ok=True)
        for photo in sorted(folder.iterdir())[:per_class]:
            target = dst / folder.name / photo.name
            if not target.exists():
                shutil.copy2(photo, target)
    return dst


def run_child(argv: list[str]) -> dict:
    """Run a Python child (from the project root); return its last stdout line, parsed as JSON."""
    proc = subprocess.run([sys.executable, *argv], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    if proc.returncode:
        raise RuntimeError(f"child {argv} failed with {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def self_maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def print_child_result(result: dict) -> None:
    """A child's last stdout line for run_child: its result as JSON, with its peak RSS."""
    print(json.dumps({**result, "maxrss_mib": self_maxrss_mib()}))


def on_tensorflow(encoder):  # -> the same encoders.Encoder
    """`encoder` running its Keras model on TensorFlow (Encoder.keras_function) instead of its ONNX
    export: the package's inference before ONNX Runtime, for side-by-side runs."""
    encoder._run = encoder.keras_function()
    return encoder


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(header: list[str], rows: list[list]) -> str:
    widths = [max(len(str(h)), *(len(_fmt(r[i])) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(_fmt(c).rjust(w) if i else _fmt(c).ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _fmt(x) -> str:
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"
    return str(x)


def pascal_features(description: str) -> tuple[Store, tuple[np.ndarray, np.ndarray], argparse.Namespace]:
    """Parse --dataset/--store, index the dataset (instant when cached) with Lite0, and return the
    store, the encoder's ImageNet classifier (W, b) and the arguments: the start of the sentence and caption benches."""

    from vector_search.imaging.encoders import get_encoder
    from vector_search.store.updates import update_store

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dataset", type=Path, default=PASCAL)
    parser.add_argument("--store", type=Path, default=ROOT / "features")
    args = parser.parse_args()
    store, _ = update_store(args.dataset, args.store, "efficientnet-lite0")
    return store, get_encoder(store.encoder).classifier(), args
