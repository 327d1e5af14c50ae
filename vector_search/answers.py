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
    """One answer: an item (image path or word) and its cosine distance to the query."""

    item: str
    distance: float

    def as_dict(self) -> dict:
        return {"item": self.item, "distance": round(self.distance, 6)}


def answer_json(query: str, results: Sequence[Result], extra: dict | None = None) -> dict:
    """The JSON object of one answered query (`extra`: fields beside the results, e.g. "words")."""
    return {"query": query, "results": [r.as_dict() for r in results], **(extra or {})}
