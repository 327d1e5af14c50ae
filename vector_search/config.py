"""Configuration: every environment variable the project reads, read here and only when used.

Nothing is frozen at import time: a test or a server that sets a variable sees it take effect on
the next call. Each function documents its variable and its default; the README lists them all.

| variable                          | what                                             | default                          |
|-----------------------------------|--------------------------------------------------|----------------------------------|
| VECTOR_SEARCH_FEATURES            | feature stores (one folder per encoder)          | ./features                       |
| VECTOR_SEARCH_MODELS              | trained joint models                             | ./models                         |
| VECTOR_SEARCH_CACHE               | per-user caches: GloVe, encoder weights + ONNX   | the user's cache folder (XDG)    |
| VECTOR_SEARCH_DATASET             | the app's default dataset folder                 | Pascal Sentences beside us, else ./dataset |
| VECTOR_SEARCH_PASCAL              | Pascal Sentences (default dataset, tests, bench) | ../shared/pascal_sentences       |
| VECTOR_SEARCH_CHECKPOINT_SECONDS  | how often indexing saves its progress            | 20                               |
| VECTOR_SEARCH_ROOT                | server mode: the only folder the app may touch   | unset (any folder)               |
| VECTOR_SEARCH_READONLY            | server mode: 1 hides every control that writes   | unset (0)                        |
| VECTOR_SEARCH_KILL_AT_RENAME      | tests only: SIGKILL this process at its Nth rename | unset                          |
| OMP_WAIT_POLICY                   | set to PASSIVE before faiss loads, unless set    | PASSIVE                          |
| KERAS_HOME                        | where Keras caches downloaded weights (VGG16)    | ~/.keras                         |
"""

from __future__ import annotations

import os
from pathlib import Path

from vector_search.errors import VectorSearchError

PROJECT_DIR = Path(__file__).resolve().parents[1]  # the source checkout (for the shared dataset beside it)

FEATURES_ENV = "VECTOR_SEARCH_FEATURES"
MODELS_ENV = "VECTOR_SEARCH_MODELS"
CACHE_ENV = "VECTOR_SEARCH_CACHE"
DATASET_ENV = "VECTOR_SEARCH_DATASET"
PASCAL_ENV = "VECTOR_SEARCH_PASCAL"
CHECKPOINT_ENV = "VECTOR_SEARCH_CHECKPOINT_SECONDS"
ROOT_ENV = "VECTOR_SEARCH_ROOT"
READONLY_ENV = "VECTOR_SEARCH_READONLY"
KILL_AT_RENAME_ENV = "VECTOR_SEARCH_KILL_AT_RENAME"


class ConfigError(VectorSearchError, ValueError):
    """An environment variable holds a value the project cannot use."""


def _get(name: str) -> str | None:
    """The variable's value, None when unset or empty."""
    return os.environ.get(name) or None


def features_root() -> Path:
    """Where feature stores live: $VECTOR_SEARCH_FEATURES, else ./features."""
    return Path(_get(FEATURES_ENV) or "features")


def models_root() -> Path:
    """Where trained joint models live: $VECTOR_SEARCH_MODELS, else ./models."""
    return Path(_get(MODELS_ENV) or "models")


def cache_root() -> Path:
    """Per-user caches that belong to no dataset (word vectors and their index, converted encoder
    weights): $VECTOR_SEARCH_CACHE, else the user's cache folder (~/.cache/vector_search on Linux)."""
    value = _get(CACHE_ENV)
    if value:
        return Path(value)
    import platformdirs

    return Path(platformdirs.user_cache_dir("vector_search", appauthor=False))


def pascal_root() -> Path:
    """The Pascal Sentences folder (`dataset/`, `sentence/`): $VECTOR_SEARCH_PASCAL, else
    `../shared/pascal_sentences` beside the project checkout."""
    return Path(_get(PASCAL_ENV) or PROJECT_DIR.parent / "shared" / "pascal_sentences")


def default_dataset() -> Path:
    """The app's default dataset: $VECTOR_SEARCH_DATASET, else Pascal Sentences if present, else ./dataset."""
    value = _get(DATASET_ENV)
    if value:
        return Path(value)
    pascal = pascal_root() / "dataset"
    return pascal if pascal.is_dir() else Path("dataset")


def checkpoint_seconds() -> float:
    """How often indexing saves its progress: $VECTOR_SEARCH_CHECKPOINT_SECONDS, else 20."""
    text = _get(CHECKPOINT_ENV) or "20"
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(f"{CHECKPOINT_ENV} must be a number of seconds, got {text!r}") from None
    if not seconds >= 0:
        raise ConfigError(f"{CHECKPOINT_ENV} must be >= 0, got {text!r}")
    return seconds


def serve_root() -> Path | None:
    """Server mode: the one folder (resolved) under which the app may read datasets and write
    stores, from $VECTOR_SEARCH_ROOT; None when unset (a laptop: any folder)."""
    value = _get(ROOT_ENV)
    return Path(value).expanduser().resolve() if value else None


def read_only() -> bool:
    """Server mode: $VECTOR_SEARCH_READONLY=1 serves what is indexed and hides every control that writes."""
    return (_get(READONLY_ENV) or "0").strip().lower() in ("1", "true", "yes", "on")


def kill_at_rename() -> int | None:
    """Fault injection (tests/test_faults.py): $VECTOR_SEARCH_KILL_AT_RENAME=N makes the process
    SIGKILL itself just before its Nth atomic rename (fileio), as a crash or power cut there would."""
    value = _get(KILL_AT_RENAME_ENV)
    return int(value) if value and value.isdigit() else None


def keras_home() -> Path:
    """Where Keras caches downloaded weights: $KERAS_HOME, else ~/.keras."""
    return Path(_get("KERAS_HOME") or Path.home() / ".keras")


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up chatter (it would hide our output), unless the user chose a level."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def passive_openmp() -> None:
    """Before faiss loads its OpenMP: idle threads sleep instead of spinning, unless the user chose.
    Spinning on a busy 2-core machine made training a small IVF-PQ 50x slower (40 s vs 0.7 s)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
