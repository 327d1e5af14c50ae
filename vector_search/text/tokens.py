"""The one tokenizer: how every part of the project cuts text into words.

Two views of the same rules:
- `words(text)`: the words GloVe is looked up by (queries, captions, similar words, tags):
  lower-cased, punctuation dropped, inner hyphens kept ("A T-shirt, red." -> a, t-shirt, red);
  `known_words` splits an unknown hyphenated word into its parts;
- `WordPiece`: BERT's uncased tokenizer, what the sentence encoder reads (sentence_encoder.py):
  clean control characters, lower-case, strip accents, split punctuation, then greedy
  longest-match-first sub-words over a vocabulary (`##` marks a continuation). Checked id for id
  against Hugging Face `tokenizers` on the Pascal captions and edge cases (tools/make_minilm_reference.py).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Container, Sequence

import numpy as np

# A word: letters/digits, with inner hyphens (t-shirt); everything else (punctuation, `_`) separates words.
WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def words(text: str) -> list[str]:
    """The words of a text, lower-cased, punctuation dropped: "A cat, lying." -> [a, cat, lying]."""
    return WORD.findall(text.lower())


def known_words(text: str, vocabulary: Container[str]) -> tuple[list[str], list[str]]:
    """(known, unknown) words of a text in `vocabulary`; an unknown hyphenated word counts by its parts
    (`sea-gull` -> sea, gull), a known one whole (`t-shirt`)."""
    known: list[str] = []
    unknown: list[str] = []
    for word in words(text):
        parts = [word] if word in vocabulary or "-" not in word else [p for p in word.split("-") if p]
        known += [p for p in parts if p in vocabulary]
        unknown += [p for p in parts if p not in vocabulary]
    return known, unknown


# --- WordPiece (BERT uncased) ---------------------------------------------------------------------

MAX_WORD_CHARS = 100  # BERT: a longer word is [UNK]


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True  # all non-letter/number ASCII, as BERT treats `$`, `^`, `` ` `` too
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp: int) -> bool:
    return (
        0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F
    )


def _clean(text: str) -> str:
    """Control characters dropped, whitespace made spaces, CJK characters spaced apart (BERT's basic tokenizer)."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp in (0, 0xFFFD):
            continue
        if ch in " \t\n\r" or unicodedata.category(ch) == "Zs":
            out.append(" ")
        elif unicodedata.category(ch).startswith("C"):
            continue
        elif _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    return "".join(out)


def basic_tokens(text: str) -> list[str]:
    """BERT's basic tokenisation: cleaned, lower-cased, accents stripped, punctuation split off."""
    pieces: list[str] = []
    for token in _clean(text).split():
        token = "".join(c for c in unicodedata.normalize("NFD", token.lower()) if unicodedata.category(c) != "Mn")
        current = ""
        for ch in token:
            if _is_punctuation(ch):
                pieces += [current, ch] if current else [ch]
                current = ""
            else:
                current += ch
        if current:
            pieces.append(current)
    return pieces


class WordPiece:
    """BERT's uncased WordPiece over a vocab.txt (one entry a line, its row its id)."""

    def __init__(self, vocabulary: Sequence[str]) -> None:
        self.ids = {token: i for i, token in enumerate(vocabulary)}
        self.unk, self.cls, self.sep, self.pad = (self.ids[t] for t in ("[UNK]", "[CLS]", "[SEP]", "[PAD]"))
        self._word = functools.lru_cache(maxsize=65_536)(self._word_ids)

    @classmethod
    def from_file(cls, path: str | Path) -> "WordPiece":
        return cls(Path(path).read_text(encoding="utf-8").splitlines())

    def _word_ids(self, word: str) -> tuple[int, ...]:
        """Greedy longest-match-first sub-words of one basic token; [UNK] if any part has no match."""
        if len(word) > MAX_WORD_CHARS:
            return (self.unk,)
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    out.append(self.ids[piece])
                    break
                end -= 1
            if end == start:
                return (self.unk,)
            start = end
        return tuple(out)

    def token_ids(self, text: str, max_length: int) -> list[int]:
        """[CLS] sub-word ids [SEP], cut to `max_length` ids in all (the model's limit)."""
        ids = [i for word in basic_tokens(text) for i in self._word(word)]
        return [self.cls, *ids[: max_length - 2], self.sep]

    def batch(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """(n, longest) int64 ids padded with [PAD], and the (n, longest) attention mask."""
        rows = [self.token_ids(t, max_length) for t in texts]
        width = max((len(r) for r in rows), default=2)
        ids = np.full((len(rows), width), self.pad, np.int64)
        mask = np.zeros((len(rows), width), np.int64)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return ids, mask
