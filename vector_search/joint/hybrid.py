"""The hybrid (the classic, DeViSE-style): an MLP trained with a cosine loss to put a photo on its
class's word vector, features -> Dense -> BN -> ReLU -> Dropout -> Dense(word dim) -> BN.

Good on the trained classes, but it snaps every photo onto one of them, so words outside them find
little (zero-shot P@10 0.14 on Pascal Sentences). TensorFlow is imported only to train it; the
saved model runs in numpy (`forward`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vector_search.joint.data import Progress, TrainingData, split
from vector_search.search.vectors import normalize


@dataclass(frozen=True)
class HybridSettings:
    """The MLP's size and its SGD (Nesterov) training."""

    hidden: int = 2000
    dropout: float = 0.5
    learning_rate: float = 0.01
    momentum: float = 0.9
    batch_size: int = 32

HYBRID_VAL_SIZE = 0.1  # of the train part, to pick the best epoch
BN_EPSILON = 1e-3  # Keras' BatchNormalization default


def fit(data: TrainingData, settings: HybridSettings = HybridSettings()) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Keep 10% of the train part (at least one photo per class) to pick the best epoch, fit the
    MLP on the rest; returns its weights, and its settings and loss history for the sidecar."""
    x, y, targets = data.features, data.labels, data.targets
    n_val = max(len(targets), round(HYBRID_VAL_SIZE * len(y)))
    fit_pos, val_pos = split(y, n_val, data.seed)
    weights, history = fit_hybrid(
        x[fit_pos], targets[y[fit_pos]], x[val_pos], targets[y[val_pos]], data.epochs, data.seed, data.verbose, data.progress, settings
    )
    return weights, {"settings": dict(asdict(settings), epochs=data.epochs, val_size=int(n_val)), "history": history}


def transform(arrays: dict[str, np.ndarray], meta: dict[str, Any], features: np.ndarray) -> np.ndarray:
    """A saved hybrid's joint vectors."""
    return forward(arrays, features)


def fit_hybrid(
    x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, epochs: int, seed: int,
    verbose: int = 0, progress: Progress | None = None, settings: HybridSettings = HybridSettings(),
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train the DeViSE-style MLP with a cosine loss; returns the weights of the epoch with the
    best validation loss (kept in memory) and the history. `progress(epoch, logs)` after each epoch."""
    import keras
    from keras import layers

    s = settings
    keras.utils.set_random_seed(seed)  # weights, dropout and shuffling; seeds numpy/random too
    inputs = keras.Input((x.shape[1],))
    h = layers.Dense(s.hidden, name="dense1")(inputs)
    h = layers.BatchNormalization(name="bn1")(h)
    h = layers.Activation("relu")(h)
    h = layers.Dropout(s.dropout)(h)
    h = layers.Dense(y.shape[1], name="dense2")(h)
    outputs = layers.BatchNormalization(name="bn2")(h)
    model = keras.Model(inputs, outputs)
    optimizer = keras.optimizers.SGD(s.learning_rate, momentum=s.momentum, nesterov=True)
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

    history = model.fit(x, y, epochs=epochs, batch_size=s.batch_size, verbose=verbose, callbacks=[KeepBest()])
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


def forward(arrays: dict[str, np.ndarray], features: np.ndarray) -> np.ndarray:
    """The hybrid MLP at inference, in numpy: Dense -> BN -> ReLU -> Dense -> BN (dropout is off)."""

    def dense_bn(x: np.ndarray, dense: str, bn: str) -> np.ndarray:
        z = x @ arrays[f"{dense}.kernel"] + arrays[f"{dense}.bias"]
        scale = arrays[f"{bn}.gamma"] / np.sqrt(arrays[f"{bn}.moving_variance"] + BN_EPSILON)
        return (z - arrays[f"{bn}.moving_mean"]) * scale + arrays[f"{bn}.beta"]

    hidden = np.maximum(dense_bn(features, "dense1", "bn1"), 0.0)
    return normalize(dense_bn(hidden, "dense2", "bn2"))
