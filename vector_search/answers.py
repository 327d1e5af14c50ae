"""What a query answers, and its one JSON shape: the CLI's `--json` lines and the HTTP API's bodies.

    {"query": ..., "results": [{"item": ..., "distance": ...}, ...], ...extra fields}

A name's undecodable bytes (a file name that is not UTF-8) are lone surrogates in `item`; JSON
escapes them as \\udcXX and os.fsencode() of the loaded string gives the bytes back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class Result:
    """One answer: an item (image path or word), its cosine distance to the query and, for photos,
    a relevance score: the share of random pairs of the collection that are farther apart."""

    item: str
    distance: float
    score: float | None = None  # relevance 0..1, calibrated per collection (search/calibration.py)

    def as_dict(self) -> dict:
        row = {"item": self.item, "distance": round(self.distance, 6)}
        return row if self.score is None else {**row, "score": round(self.score, 4)}


def answer_json(query: str, results: Sequence[Result], extra: dict | None = None) -> dict:
    """The JSON object of one answered query (`extra`: fields beside the results, e.g. "words")."""
    return {"query": query, "results": [r.as_dict() for r in results], **(extra or {})}
