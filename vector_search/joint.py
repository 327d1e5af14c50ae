"""The joint image-word space: image features mapped into the word-vector space.

A photo's joint vector can be compared with any word's vector: a word ranks photos (text ->
image search) and a photo's nearest words are its tags. Every method returns L2-normalised
(n, word dim) float32 rows. A class is read as the mean vector of its `_`-split words
(`dining_table` -> mean(dining, table)).

- "conse" (no training; Norouzi et al. 2014, "Zero-shot learning by convex combination of
  semantic embeddings"): the probability-weighted mean of the word vectors of the photo's top
  ImageNet classes, from the encoder's own classifier. A class's words are its names' and its
  WordNet ancestors' (a golden retriever is also a "sporting dog", hence a dog).
- "hybrid" (the classic, DeViSE-style): an MLP trained with a cosine loss to put a photo on
  its class's word vector. Good on the trained classes, but it snaps every photo onto one of
  them, so words outside them find little (zero-shot P@10 0.14 on Pascal Sentences).
- "blend" (default): ConSE twice. Over the dataset's own classes, with a softmax classifier
  trained on the features (p_k, class word vectors t_k), and over ImageNet's, weighted by the
  classifier's doubt:

      J = unit( unit(sum of p_k * unit(t_k) over the 3 most probable k) + alpha * (1 - max p)^gamma * conse )

  A photo the classifier is sure of sits on its class word; one that resembles none of the
  trained classes falls back to ImageNet's words.

Measured by bench/measure_joint.py on Pascal Sentences (Lite0 features, GloVe 6B 50d; held-out
20%; zero-shot = 5 classes never trained on, mean and worst of 10 random sets):

    method   text->image P@10   tags top-1 / top-5   zero-shot P@10 (worst set)
    hybrid   0.685              0.665 / 0.780        0.142 (0.10)
    conse    0.445              0.195 / 0.365        0.720 (0.60)
    blend    0.750              0.675 / 0.765        0.712 (0.58)

Models are saved as `<name>.npz` (arrays only, never pickled) plus a `<name>.json` sidecar
(encoder, word vectors, classes, split, settings, history, a hash of the npz). Inference is
plain numpy; TensorFlow is imported only to train the hybrid.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import fileio
from .errors import VectorSearchError
from .imagenet import class_ancestors, class_synonyms
from .index import normalize
from .words import WordVectors

METHODS = ("blend", "hybrid", "conse")
DEFAULT_METHOD = "blend"
FORMAT = "vector_search.joint"
FORMAT_VERSION = 1

# GloVe is ordered by frequency; past the 50,000 most frequent words lie mostly rare names,
# typos and foreign tokens whose vectors come from few occurrences. Both ImageNet label words
# and tags come from this head (it still holds aeroplane, rank 42,581, and potted, 40,745).
FREQUENT_WORDS = 50_000

# ConSE: how many ImageNet classes an image's vector mixes (measured 10 vs 20: equal).
CONSE_TOP = 10
# ImageNet label words: the class's own and its WordNet ancestors', up to HYPERNYM_DEPTH steps
# up, weighted HYPERNYM_DECAY ** steps (imagenet_label_vectors; chosen with the blend settings).
HYPERNYM_DECAY = 0.7
HYPERNYM_DEPTH = 4

# Blend settings, chosen on validation data inside the train part (`bench/measure_joint.py --tune`):
# classifier L2 strength (sklearn C), classes mixed (runner-up classes can show among the tags),
# weight and sharpness of the ImageNet fallback.
BLEND_SETTINGS = {"classifier_c": 0.03, "top_classes": 3, "alpha": 1.0, "gamma": 1.0}

# The classic hybrid: features -> Dense -> BN -> ReLU -> Dropout -> Dense(word dim) -> BN.
HYBRID_SETTINGS = {"hidden": 2000, "dropout": 0.5, "learning_rate": 0.01, "momentum": 0.9, "batch_size": 32}
HYBRID_VAL_SIZE = 0.1  # of the train part, to pick the best epoch
BN_EPSILON = 1e-3  # Keras' BatchNormalization default


Progress = Callable[[int, dict], None]  # (epoch, {"loss": ..., "val_loss": ...})


class ModelNotFoundError(VectorSearchError, FileNotFoundError):
    """No saved joint model at the given path."""


class ModelMismatchError(VectorSearchError, ValueError):
    """A joint model used with other image features or word vectors than it was trained on."""


# --- word targets ---------------------------------------------------------------------------------


def class_words(name: str) -> list[str]:
    """The words of a class folder name: `dining_table` -> ['dining', 'table']."""
    return [w for w in name.lower().split("_") if w]


def class_vectors(names: Sequence[str], words: WordVectors) -> np.ndarray:
    """(c, dim) mean word vector of each class name; ValueError if a class has no known word."""
    rows = []
    for name in names:
        known = [words.vector(w) for w in class_words(name) if w in words]
        if not known:
            raise ValueError(f"class {name!r} has no word in {words.name}: rename its folder to English words joined by _")
        rows.append(np.mean(known, axis=0))
    return np.asarray(rows, np.float32)


@functools.lru_cache(maxsize=2)
def imagenet_label_vectors(words: WordVectors, decay: float = HYPERNYM_DECAY, depth: int = HYPERNYM_DEPTH) -> np.ndarray:
    """(1000, dim) word vector of each ImageNet class, read-only and computed once per word
    vectors and settings; zero rows for classes with no usable word.

    Rule (measured by bench/measure_joint.py --tune): the class and each WordNet ancestor up to
    `depth` steps up add the unit mean of their lemmas' HEAD words (the last word) among the
    FREQUENT_WORDS, weighted decay ** steps. Heads name the kind of thing ("tiger cat" -> cat,
    "passenger car" -> car); modifiers ("French bulldog" -> french) and rare or Latin names pull
    vectors astray. Ancestors add the word a breed's own name lacks: "golden retriever" ->
    retriever, then "sporting dog, gun dog" -> dog, which ImageNet's 118 dog breeds never say.
    """
    out = np.zeros((1000, words.dim), np.float32)
    for cid, synonyms in enumerate(class_synonyms()):
        nodes = [(0, synonyms)] + [(steps, lemmas) for steps, lemmas in class_ancestors(cid) if steps <= depth]
        for steps, lemmas in nodes:
            heads = {s.lower().split()[-1] for s in lemmas}
            known = [words.vector(h) for h in sorted(heads) if h in words and words.index_of(h) < FREQUENT_WORDS]
            if known:
                out[cid] += decay**steps * normalize(np.mean(known, axis=0, keepdims=True))[0]
    out.flags.writeable = False
    return out


# --- ConSE ----------------------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def convex_combination(probs: np.ndarray, label_vectors: np.ndarray, top: int) -> np.ndarray:
    """(n, dim) unit vectors: sum of p * label vector over each row's `top` most probable labels.

    Labels whose vector is zero (no known word) are skipped, so they never take a top slot.
    """
    probs = np.where(np.any(label_vectors != 0, axis=1), probs, 0.0)
    top = min(top, probs.shape[1])
    best = np.argpartition(-probs, top - 1, axis=1)[:, :top]
    weights = np.take_along_axis(probs, best, axis=1)
    return normalize(np.einsum("nt,ntd->nd", weights, label_vectors[best]))


def conse_vectors(features: np.ndarray, classifier: tuple[np.ndarray, np.ndarray], label_vectors: np.ndarray) -> np.ndarray:
    """ConSE joint vectors: ImageNet probabilities softmax(features @ W + b) -> convex combination."""
    w, b = classifier
    return convex_combination(softmax(features @ w + b), label_vectors, CONSE_TOP)


# --- the dataset classifier (blend) ---------------------------------------------------------------


def power_normalize(features: np.ndarray) -> np.ndarray:
    """Signed square root: damps the few large activations (+0.4 points of accuracy over 5 splits)."""
    return np.sign(features) * np.sqrt(np.abs(features))


def fit_classifier(features: np.ndarray, labels: np.ndarray, c: float, seed: int) -> dict[str, np.ndarray]:
    """Multinomial logistic regression on power-normalised, standardised features; returns its arrays."""
    from sklearn.linear_model import LogisticRegression

    x = power_normalize(features)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    model = LogisticRegression(C=c, max_iter=3000, random_state=seed)
    model.fit((x - mean) / scale, labels)
    if len(model.classes_) != labels.max() + 1:
        raise ValueError("every class needs training images")
    coef, intercept = model.coef_, model.intercept_
    if len(model.classes_) == 2:  # sklearn keeps one logit for two classes: p1 = softmax([0, logit])
        coef, intercept = np.vstack([np.zeros_like(coef), coef]), np.r_[0.0, intercept]
    return {
        "clf.mean": mean.astype(np.float32),
        "clf.scale": scale.astype(np.float32),
        "clf.coef": coef.astype(np.float32),
        "clf.intercept": intercept.astype(np.float32),
    }


def standardise(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """Features as the classifier sees them: power-normalised, standardised."""
    return (power_normalize(features) - arrays["clf.mean"]) / arrays["clf.scale"]


def classifier_probabilities(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    return softmax(standardise(arrays, features) @ arrays["clf.coef"].T + arrays["clf.intercept"])


def blend_vectors(
    probs: np.ndarray, class_targets: np.ndarray, conse: np.ndarray, top_classes: int, alpha: float, gamma: float
) -> np.ndarray:
    """The blend formula (module docstring) from class probabilities and ConSE unit vectors."""
    own = convex_combination(probs, normalize(class_targets), top_classes)
    doubt = alpha * (1.0 - probs.max(axis=1, keepdims=True)) ** gamma
    return normalize(own + doubt * conse)


# --- the hybrid MLP (classic) ---------------------------------------------------------------------


def fit_hybrid(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, epochs: int, seed: int,
    verbose: int = 0, progress: Progress | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train the DeViSE-style MLP with a cosine loss; returns the weights of the epoch with the
    best validation loss (kept in memory) and the history. `progress(epoch, logs)` after each epoch."""
    import keras
    from keras import layers

    s = HYBRID_SETTINGS
    keras.utils.set_random_seed(seed)  # weights, dropout and shuffling; seeds numpy/random too
    inputs = keras.Input((x.shape[1],))
    h = layers.Dense(s["hidden"], name="dense1")(inputs)
    h = layers.BatchNormalization(name="bn1")(h)
    h = layers.Activation("relu")(h)
    h = layers.Dropout(s["dropout"])(h)
    h = layers.Dense(y.shape[1], name="dense2")(h)
    outputs = layers.BatchNormalization(name="bn2")(h)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.SGD(s["learning_rate"], momentum=s["momentum"], nesterov=True)
    model.compile(optimizer=optimizer, loss=keras.losses.CosineSimilarity())

    best: dict[str, Any] = {"val_loss": np.inf}
    val_losses: list[float] = []

    class KeepBest(keras.callbacks.Callback):
        """Validation loss after each epoch (one direct call: cheaper than fit's evaluation loop)."""

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            predicted = np.asarray(self.model(x_val, training=False))
            val_losses.append(-float(np.mean(np.sum(normalize(predicted) * normalize(y_val), axis=1))))
            if val_losses[-1] < best["val_loss"]:
                best.update(val_loss=val_losses[-1], epoch=epoch, weights=self.model.get_weights())
            if progress:
                progress(epoch + 1, {"loss": float((logs or {}).get("loss", np.nan)), "val_loss": val_losses[-1]})

    history = model.fit(x, y, epochs=epochs, batch_size=s["batch_size"], verbose=verbose, callbacks=[KeepBest()])
    model.set_weights(best["weights"])
    arrays = {}
    for name in ("dense1", "bn1", "dense2", "bn2"):
        layer = model.get_layer(name)
        for var, value in zip(layer.weights, layer.get_weights()):
            arrays[f"{name}.{var.name}"] = np.asarray(value, np.float32)
    record = {
        "loss": [float(v) for v in history.history["loss"]],
        "val_loss": val_losses,
        "best_epoch": int(best["epoch"]) + 1,
    }
    return arrays, record


def hybrid_forward(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """The hybrid MLP at inference, in numpy: Dense -> BN -> ReLU -> Dense -> BN (dropout is off)."""

    def dense_bn(x: np.ndarray, dense: str, bn: str) -> np.ndarray:
        z = x @ arrays[f"{dense}.kernel"] + arrays[f"{dense}.bias"]
        scale = arrays[f"{bn}.gamma"] / np.sqrt(arrays[f"{bn}.moving_variance"] + BN_EPSILON)
        return (z - arrays[f"{bn}.moving_mean"]) * scale + arrays[f"{bn}.beta"]

    hidden = np.maximum(dense_bn(features, "dense1", "bn1"), 0.0)
    return normalize(dense_bn(hidden, "dense2", "bn2"))


# --- the model ------------------------------------------------------------------------------------


@dataclass
class JointModel:
    """A trained (or, for ConSE, assembled) map from image features to the word space.

    `meta` is the JSON sidecar; `arrays` holds every weight (numpy only).
    """

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(repr=False)

    @property
    def method(self) -> str:
        return self.meta["method"]

    @property
    def classes(self) -> list[str]:
        return self.meta["classes"]

    @property
    def fingerprint(self) -> str:
        """What the model computes: its weights' hash once saved, else a hash of its settings (ConSE)."""
        settings = json.dumps(self.meta, sort_keys=True).encode()
        return self.meta.get("weights_sha256") or hashlib.sha256(settings).hexdigest()[:16]

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(n, feature dim) image features -> (n, word dim) unit joint vectors."""
        features = np.atleast_2d(np.asarray(features, np.float32))
        if features.shape[1] != self.meta["feature_dim"]:
            raise ModelMismatchError(
                f"joint model expects {self.meta['feature_dim']}-d features of {self.meta['encoder']}, got {features.shape[1]}-d"
            )
        a = self.arrays
        if self.method == "hybrid":
            return hybrid_forward(a, features)
        conse = conse_vectors(features, (a["imagenet.w"], a["imagenet.b"]), a["imagenet.labels"])
        if self.method == "conse":
            return conse
        s = self.meta["settings"]
        probs = classifier_probabilities(a, features)
        blend = blend_vectors(probs, a["class_vectors"], conse, s["top_classes"], s["alpha"], s["gamma"])
        if "captions.w" not in a:
            return blend
        from .captions import add_captions  # captions.py reads sentences, which reads this module

        return add_captions(blend, standardise(a, features), a["captions.w"], self.meta["captions"]["weight"])

    def check(self, encoder: str | None = None, words: WordVectors | None = None) -> None:
        """Raise ModelMismatchError unless the model was made for this encoder and these word vectors."""
        if encoder is not None and encoder != self.meta["encoder"]:
            raise ModelMismatchError(
                f"joint model was trained on {self.meta['encoder']} features, not {encoder}: retrain it with this encoder"
            )
        if words is not None:
            mine, theirs = self.meta["words"], _words_identity(words)
            if mine != theirs:
                other = f"{words.name} ({words.dim}-d)" if mine["name"] != words.name else "other vectors of that name"
                raise ModelMismatchError(
                    f"joint model was trained with word vectors {mine['name']} ({mine['dim']}-d), "
                    f"not {other}: retrain it with these word vectors"
                )

    def save(self, path: str | Path) -> None:
        """Write `path` (.npz, arrays only) and its .json sidecar, each atomically."""
        path = Path(path)
        fileio.save_npz(path, **self.arrays)
        meta = dict(self.meta, format=FORMAT, format_version=FORMAT_VERSION, weights_sha256=_sha256(path))
        fileio.save_json(sidecar(path), meta)

    @classmethod
    def load(cls, path: str | Path, encoder: str | None = None, words: WordVectors | None = None) -> "JointModel":
        """Load a saved model, checking it against `encoder` and `words` when given."""
        path = Path(path)
        if not path.is_file() or not sidecar(path).is_file():
            missing = path if not path.is_file() else sidecar(path)
            raise ModelNotFoundError(f"no joint model at {path} ({missing} is missing): train one first (`vector-search train`)")
        try:
            meta = fileio.load_json(sidecar(path))
        except ValueError as err:
            raise ModelMismatchError(f"{sidecar(path)} is damaged ({err}): retrain the model") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
            raise ModelMismatchError(f"{sidecar(path)} is not a version-{FORMAT_VERSION} joint model: retrain it")
        if meta.get("weights_sha256") != _sha256(path):
            raise ModelMismatchError(f"{path} does not match its sidecar {sidecar(path)} (partly overwritten?): retrain it")
        model = cls(meta, fileio.load_npz(path))
        model.check(encoder, words)
        return model


def sidecar(path: str | Path) -> Path:
    """The JSON sidecar of a model file: `models/joint.npz` -> `models/joint.json`."""
    return Path(path).with_suffix(".json")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return fileio.sha256_of(f)


# --- training -------------------------------------------------------------------------------------


def split(labels: Sequence[str] | np.ndarray, test_size: float | int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, test) positions; `test_size` a fraction or a count; no test when 0."""
    positions = np.arange(len(labels))
    if test_size == 0:
        return positions, positions[:0]
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(positions, test_size=test_size, stratify=np.asarray(labels), random_state=seed)
    return np.sort(train), np.sort(test)


def _words_identity(words: WordVectors) -> dict[str, Any]:
    """What a saved model records of its word vectors, to refuse others."""
    return {"name": words.name, "dim": words.dim, "fingerprint": words.fingerprint}


def _base_meta(method: str, encoder: str, feature_dim: int, words: WordVectors) -> dict[str, Any]:
    return {
        "method": method,
        "encoder": encoder,
        "feature_dim": int(feature_dim),
        "words": _words_identity(words),
        "conse_top": CONSE_TOP,
        "hypernyms": {"decay": HYPERNYM_DECAY, "depth": HYPERNYM_DEPTH},
        "frequent_words": FREQUENT_WORDS,
    }


def _imagenet_arrays(imagenet_classifier: tuple[np.ndarray, np.ndarray] | None, words: WordVectors, dim: int) -> dict[str, np.ndarray]:
    if imagenet_classifier is None:
        raise ValueError("this method needs the encoder's ImageNet classifier (W, b)")
    w, b = (np.asarray(a, np.float32) for a in imagenet_classifier)
    if w.shape != (dim, 1000) or b.shape != (1000,):
        raise ValueError(f"ImageNet classifier must be W ({dim}, 1000) and b (1000,), got {w.shape} and {b.shape}")
    return {"imagenet.w": w, "imagenet.b": b, "imagenet.labels": imagenet_label_vectors(words)}


def conse_model(imagenet_classifier: tuple[np.ndarray, np.ndarray], words: WordVectors, encoder: str) -> JointModel:
    """The untrained ConSE model for an encoder's ImageNet classifier."""
    dim = np.shape(imagenet_classifier[0])[0]
    meta = dict(_base_meta("conse", encoder, dim, words), classes=[], held_out_classes=[])
    return JointModel(meta, _imagenet_arrays(imagenet_classifier, words, dim))


def train(
    features: np.ndarray,
    labels: Sequence[str],
    words: WordVectors,
    *,
    method: str = DEFAULT_METHOD,
    encoder: str,
    imagenet_classifier: tuple[np.ndarray, np.ndarray] | None = None,
    exclude_classes: Sequence[str] = (),
    test_size: float = 0.2,
    seed: int = 0,
    epochs: int = 50,
    items: Sequence[str] | None = None,
    captions: Sequence[Sequence[str]] | None = None,
    verbose: int = 0,
    progress: Progress | None = None,
) -> JointModel:
    """Fit a joint model on (n, d) features with one class name per row.

    Images of `exclude_classes` are dropped entirely (to measure zero-shot search). The rest is
    split stratified into train and test (`test_size`, `seed`); the test positions (and their
    `items` names, if given) are recorded so evaluation can reuse them, and nothing is fitted on
    them. The hybrid keeps 10% of the train part to pick its best epoch and calls
    `progress(epoch, {"loss", "val_loss"})` after each. `imagenet_classifier` (the encoder's W, b)
    is needed by "blend" and "conse". `captions` (one list per row, [] for none) add the caption
    model to the blend (captions.py); only training photos' captions are fitted.
    """
    if method not in METHODS:
        raise ValueError(f"unknown joint method {method!r}; choose one of {', '.join(METHODS)}")
    features = np.asarray(features, np.float32)
    labels = np.asarray(labels, dtype=str)
    if features.ndim != 2 or len(features) != len(labels):
        raise ValueError(f"need (n, d) features and n labels, got {features.shape} and {len(labels)}")
    if method == "conse":
        return conse_model(imagenet_classifier, words, encoder)  # type: ignore[arg-type]

    keep = np.flatnonzero(~np.isin(labels, list(exclude_classes)))
    classes = sorted(set(labels[keep].tolist()))
    if len(classes) < 2:
        raise ValueError(f"need at least 2 classes to train, got {classes}")
    counts = np.unique(labels[keep], return_counts=True)[1]
    if test_size and (counts.min() < 2 or np.ceil(test_size * len(keep)) < len(classes)):  # sklearn's rule
        raise ValueError(
            f"too few photos to hold out a stratified {test_size:.0%} test split: {len(keep)} photos in "
            f"{len(classes)} classes (at least 2 per class and {int(np.floor((len(classes) - 1) / test_size)) + 1} in all)"
        )
    targets = class_vectors(classes, words)
    y = np.searchsorted(classes, labels[keep])
    train_pos, test_pos = split(labels[keep], test_size, seed)
    test = keep[test_pos]
    meta = _base_meta(method, encoder, features.shape[1], words)
    meta.update(
        classes=classes,
        held_out_classes=sorted(set(exclude_classes)),
        split={"seed": seed, "test_size": test_size, "test": test.tolist()},
    )
    if items is not None:
        meta["split"]["test_items"] = [items[i] for i in test]
    arrays: dict[str, np.ndarray] = {"class_vectors": targets}

    start = time.perf_counter()
    x, y_train = features[keep[train_pos]], y[train_pos]
    if method == "hybrid":
        n_val = max(len(classes), round(HYBRID_VAL_SIZE * len(y_train)))  # at least one per class
        fit_pos, val_pos = split(y_train, n_val, seed)
        weights, history = fit_hybrid(
            x[fit_pos], targets[y_train[fit_pos]], x[val_pos], targets[y_train[val_pos]], epochs, seed, verbose, progress
        )
        arrays.update(weights)
        meta.update(settings=dict(HYBRID_SETTINGS, epochs=epochs, val_size=int(n_val)), history=history)
    else:
        arrays.update(_imagenet_arrays(imagenet_classifier, words, features.shape[1]))
        arrays.update(fit_classifier(x, y_train, BLEND_SETTINGS["classifier_c"], seed))
        meta.update(settings=dict(BLEND_SETTINGS))
        if captions is not None:
            from . import captions as captions_module

            caption_arrays, meta["captions"] = captions_module.fit(
                standardise(arrays, features), captions, words, keep[train_pos], test
            )
            arrays.update(caption_arrays)
    meta["train_seconds"] = round(time.perf_counter() - start, 2)
    return JointModel(meta, arrays)


# --- tags -----------------------------------------------------------------------------------------

# Function words never worth a tag (a short list; the FREQUENT_WORDS cut removes rare junk).
STOP_WORDS = frozenset(
    """
    about above across after again against all almost alone along already also although always am among an and
    another any anyone anything anyway anywhere are around as at back be became because become been before
    behind being below beside besides between beyond both but by can cannot could did do does doing done down
    during each either else enough even ever every everyone everything except few for from further had has have
    having he her here hers herself him himself his how however if in indeed into is it its itself just least
    less many may me might mine more most mostly much must my myself neither never nevertheless next no nobody
    none nor not nothing now nowhere of off often on once one only onto or other others otherwise our ours
    ourselves out over own per perhaps please rather same several she should since so some somehow someone
    something sometime sometimes somewhere still such than that the their theirs them themselves then there
    thereby therefore these they this those though through throughout thus to together too toward towards under
    until up upon us very via was we well were what whatever when whence whenever where whereas wherever whether
    which while whither who whoever whole whom whose why will with within without would yet you your yours
    yourself yourselves
    """.split()
)
MIN_TAG_LENGTH = 3
_LETTERS = re.compile(r"[^\W\d_]+")  # letters only (any script), no digits, punctuation or _


def is_tag_word(word: str) -> bool:
    """The tag filter: purely alphabetic, at least MIN_TAG_LENGTH letters, not a stop word."""
    return len(word) >= MIN_TAG_LENGTH and _LETTERS.fullmatch(word) is not None and word not in STOP_WORDS


@dataclass(frozen=True)
class TagVocabulary:
    """The words that can be tags (filtered once), with their unit vectors."""

    words: list[str]
    units: np.ndarray  # (m, dim) float32


def tag_vocabulary(words: WordVectors, size: int = FREQUENT_WORDS) -> TagVocabulary:
    """The `size` most frequent words that pass `is_tag_word` (GloVe is frequency-ordered)."""
    rows = [i for i, w in enumerate(words.words[:size]) if is_tag_word(w)]
    return TagVocabulary([words.words[i] for i in rows], normalize(np.asarray(words.vectors[rows])))


def tags(joint_vectors: np.ndarray, vocabulary: TagVocabulary, k: int = 5) -> list[list[tuple[str, float]]]:
    """The k nearest tag words to each joint vector, as (word, cosine distance), nearest first."""
    sims = normalize(np.atleast_2d(joint_vectors)) @ vocabulary.units.T
    k = min(k, sims.shape[1])
    best = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.take_along_axis(best, np.argsort(-np.take_along_axis(sims, best, 1), axis=1), 1)
    return [[(vocabulary.words[j], float(1.0 - s[j])) for j in row] for s, row in zip(sims, order)]
