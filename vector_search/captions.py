"""Learning from captions: photos mapped onto what people wrote about them.

A dataset may come with captions, one text file per photo and one caption a line, in a folder
beside it laid out like it: `<dataset>/<class>/<id>.jpg` -> `<captions>/<class>/<id>.txt`
(Pascal Sentences ships ~5 a photo in `<dataset>/../sentence/`, found by itself).

The caption model is a ridge regression (closed form, well under a second) from a photo's
features (power-normalised and standardised, as the blend's classifier sees them) to the unit
mean of its captions' sentence vectors (sentences.weigh_term: SIF weights, function words
nothing). The blend model adds it to its own joint vector:

    J = unit( blend(x) + CAPTION_SETTINGS["weight"] * unit(W x) )

so a photo moves towards the words people use for photos like it ("grass", "sitting",
"street"), while its class word still leads: single words, unseen words and tags keep working.
Ridge was chosen over CCA and a DeViSE ranking loss for its speed and because, measured on
validation photos inside the training part (bench/measure_sentences.py --captions), more
capacity did not help 800 photos; the settings were chosen there too.

The split holds out photos with all their captions: only training photos' captions are fitted,
which `training_rows` asserts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from .index import normalize
from .sentences import tokens, weigh_term
from .words import WordVectors

CAPTION_SETTINGS = {"ridge": 1e4, "weight": 0.5}
CAPTION_SUFFIX = ".txt"


def default_captions_dir(dataset: str | os.PathLike) -> Path | None:
    """`<dataset>/../sentence` if it is a folder (the Pascal Sentences layout), else None."""
    folder = Path(dataset).parent / "sentence"
    return folder if folder.is_dir() else None


def read_captions(captions_dir: str | os.PathLike, items: Sequence[str]) -> tuple[list[list[str]], list[str]]:
    """Each item's captions (`items` are paths relative to the dataset: `cat/1.jpg` ->
    `<captions_dir>/cat/1.txt`), [] for a photo without a caption file; and one line per file that
    could not be read. A bad file costs its own photo's captions, nothing else."""
    root = Path(captions_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"no captions folder at {root}")
    found, problems = [], []
    for item in items:
        path = root / Path(item).with_suffix(CAPTION_SUFFIX)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as err:
            problems.append(f"{path}: {err.strerror or err}")
            text = ""
        found.append([line.strip() for line in text.splitlines() if line.strip()])
    return found, problems


def caption_targets(captions: Sequence[Sequence[str]], words: WordVectors) -> tuple[np.ndarray, np.ndarray]:
    """(n, dim) unit mean of each photo's caption vectors, and (n,) whether it has one (a photo
    whose captions hold no known word has none)."""
    targets = np.zeros((len(captions), words.dim), np.float32)
    for i, lines in enumerate(captions):
        vectors = []
        for line in lines:
            known = [w for w in tokens(line) if w in words]
            if known:
                vectors.append(weigh_term(known, words)[0])
        if vectors:
            targets[i] = normalize(np.mean(normalize(np.asarray(vectors, np.float32)), axis=0, keepdims=True))[0]
    return targets, np.any(targets != 0, axis=1)


def training_rows(has_caption: np.ndarray, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """The rows the caption model is fitted on: training photos with captions. Asserts that no
    held-out photo's caption is among them (the split holds out photos with all their captions)."""
    rows = np.asarray(train)[has_caption[np.asarray(train)]]
    assert not np.isin(rows, test).any(), "a held-out photo's captions would be trained on"
    return rows


def fit_caption_map(x: np.ndarray, targets: np.ndarray, ridge: float) -> np.ndarray:
    """Ridge regression weights (d, dim): argmin |x W - targets|^2 + ridge |W|^2, closed form."""
    x = np.asarray(x, np.float64)
    gram = x.T @ x + ridge * np.eye(x.shape[1])
    return np.linalg.solve(gram, x.T @ np.asarray(targets, np.float64)).astype(np.float32)


def fit(
    standardised: np.ndarray, captions: Sequence[Sequence[str]], words: WordVectors, train: np.ndarray, test: np.ndarray
) -> tuple[dict[str, np.ndarray], dict]:
    """The caption model's arrays and its record for the model's sidecar, from standardised
    features and each row's captions; `train` and `test` are row positions (test never fitted)."""
    targets, has_caption = caption_targets(captions, words)
    rows = training_rows(has_caption, train, test)
    if len(rows) < 2:
        raise ValueError(f"only {len(rows)} training photos have captions: too few to learn from")
    weights = fit_caption_map(standardised[rows], targets[rows], CAPTION_SETTINGS["ridge"])
    record = dict(CAPTION_SETTINGS, photos=int(len(rows)), captions=int(sum(len(captions[r]) for r in rows)))
    return {"captions.w": weights}, record


def add_captions(joint_vectors: np.ndarray, standardised: np.ndarray, weights: np.ndarray, weight: float) -> np.ndarray:
    """The blend's joint vectors moved towards the predicted caption vectors (module docstring)."""
    return normalize(joint_vectors + weight * normalize(standardised @ weights))
