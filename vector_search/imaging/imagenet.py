"""The 1000 ImageNet-1k classes, in the standard class-id order (index = class id): their names,
and their place in WordNet (data/imagenet_hierarchy.json, from WordNet 3.0: data/WORDNET_LICENSE)."""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from importlib import resources

from vector_search.errors import VectorSearchError


@lru_cache(maxsize=1)
def class_synonyms() -> tuple[tuple[str, ...], ...]:
    """Synonyms of each class, primary name first, e.g. ``("tabby", "tabby cat")`` for class 281."""
    text = resources.files("vector_search").joinpath("data/imagenet_classes.json").read_text(encoding="utf-8")
    return tuple(tuple(names) for names in json.loads(text))


@lru_cache(maxsize=1)
def _hierarchy() -> dict:
    text = resources.files("vector_search").joinpath("data/imagenet_hierarchy.json").read_text(encoding="utf-8")
    return json.loads(text)


def wordnet_synsets() -> dict[str, dict]:
    """The shipped WordNet synsets (the classes' and their ancestors'): id -> {"lemmas", "hypernyms"}."""
    return _hierarchy()["synsets"]


def class_ancestors(cid: int) -> list[tuple[int, tuple[str, ...]]]:
    """The WordNet ancestors of class `cid` as (steps up, lemmas), nearest first; each once, at its
    shortest distance. "golden retriever" -> (1, ("retriever",)), (2, ("sporting dog", "gun dog")),
    (3, ("hunting dog",)), (4, ("dog", "domestic dog", "Canis familiaris")), ... (12, ("entity",))."""
    synsets = _hierarchy()["synsets"]
    steps: dict[str, int] = {}
    level, distance = [_hierarchy()["classes"][cid]], 0
    while level:
        level = [s for s in dict.fromkeys(level) if s not in steps]
        steps.update((s, distance) for s in level)
        level = [parent for s in level for parent in synsets[s]["hypernyms"]]
        distance += 1
    return [(d, tuple(synsets[s]["lemmas"])) for s, d in steps.items() if d > 0]


def class_names() -> list[str]:
    """Human-readable names with synonyms, e.g. ``"tabby, tabby cat"``."""
    return [", ".join(names) for names in class_synonyms()]


class ClassNameError(VectorSearchError, ValueError):
    """No ImageNet class has this name or id, or the name belongs to several classes."""


@lru_cache(maxsize=1)
def _index() -> dict[str, tuple[int, ...]]:
    """Lower-cased synonym -> the ids of the classes it names. A primary name wins over other
    classes' secondary synonyms ("tub" is 876, not 435 "bathtub, bathing tub, bath, tub"); a name
    left with several ids ("crane": 134 the bird, 517 the machine) is ambiguous."""
    index: dict[str, tuple[int, ...]] = {}
    for rank in (0, 1):
        found: dict[str, tuple[int, ...]] = {}
        for cid, names in enumerate(class_synonyms()):
            for name in names[:1] if rank == 0 else names[1:]:
                if name.lower() not in index:
                    found[name.lower()] = found.get(name.lower(), ()) + (cid,)
        index.update(found)
    return index


def find_class(name: str) -> int:
    """Class id whose synonyms include `name` (case-insensitive). ClassNameError with close matches
    when no class has it, and with the ids and names of each when several have it."""
    key = " ".join(name.split()).lower()
    index = _index()
    ids = index.get(key, ())
    if len(ids) == 1:
        return ids[0]
    if ids:
        choices = "; ".join(f"{cid} ({class_names()[cid]})" for cid in ids)
        raise ClassNameError(f"ImageNet class name {name!r} is ambiguous: give the class id, one of {choices}")
    close = difflib.get_close_matches(key, index, n=5)
    hint = f"; did you mean: {', '.join(close)}?" if close else ""
    raise ClassNameError(f"unknown ImageNet class {name!r}{hint}")


def class_id(choice: int | str) -> int:
    """The class id of `choice`: an id (an int, or a string of digits such as "517") or a name
    (see find_class). ClassNameError when it names no class or several."""
    if isinstance(choice, str) and choice.strip().isdigit():
        choice = int(choice)
    if isinstance(choice, str):
        return find_class(choice)
    if not 0 <= choice < len(class_synonyms()):
        raise ClassNameError(f"ImageNet class id {choice} out of range 0..{len(class_synonyms()) - 1}")
    return int(choice)
