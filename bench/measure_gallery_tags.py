"""Tags of the built-in gallery (scikit-image photos, unlike Pascal's) from models trained on Pascal
Sentences, GloVe's beside the sentence encoder's: is the obvious word among the top 5?

    python bench/measure_gallery_tags.py [--store features] [--models /tmp/bench_sentence_models]

The models are those of bench/bench_sentence_query.py (trained once there, or here if missing).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PASCAL  # noqa: E402

# The obvious words of each gallery photo (issue 22); a tag hits if one of its words is one of them.
OBVIOUS = {"coffee": {"coffee", "cup"}, "astronaut": {"astronaut", "person", "man"}, "rocket": {"rocket"}, "cat": {"cat"},
           "horse": {"horse"}}


def main() -> None:
    from vector_search.datasets.gallery import PHOTOS, export_gallery, photo_path
    from vector_search.engine import Engine
    from vector_search.text.vocab import STOP_WORDS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("features"))
    parser.add_argument("--models", type=Path, default=Path("/tmp/bench_sentence_models"))
    args = parser.parse_args()
    folder = export_gallery(Path(tempfile.mkdtemp()) / "gallery")
    print(f"gallery photos: {', '.join(p.label for p in PHOTOS)}; without a photo: {', '.join(sorted(set(OBVIOUS) - {p.label for p in PHOTOS}))}")
    for text in ("glove", "minilm"):
        model = args.models / f"joint-{text}.npz"
        engine = Engine(args.store, model_path=model)
        if not model.is_file():
            engine.index(PASCAL)
            engine.train(text=text)
        hits, function_words = 0, 0
        print(f"\n{text} ({engine.joint.method} model trained on Pascal Sentences)")
        for photo in PHOTOS:
            tags = [r.item for r in engine.tags(photo_path(folder, photo), 5)]
            function_words += sum(w in STOP_WORDS for t in tags for w in t.split())
            hit = photo.label in OBVIOUS and any(set(t.split()) & OBVIOUS[photo.label] for t in tags)
            hits += hit
            print(f"  {photo.label:12s} {'HIT ' if hit else '    ' if photo.label in OBVIOUS else '  - '} {', '.join(tags)}")
        print(f"  obvious word in the top 5: {hits} of {len(OBVIOUS)} ({len(set(OBVIOUS) & {p.label for p in PHOTOS})} in the gallery); "
              f"function words among all tags: {function_words}")


if __name__ == "__main__":
    main()
