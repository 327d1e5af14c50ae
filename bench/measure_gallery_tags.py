"""Tags of the issue's five photos (scikit-image sample images, unlike Pascal's) from models trained on
Pascal Sentences, GloVe's beside the sentence encoder's: is the obvious word among the top 5?

Issue 22 names five photos by their obvious words: the coffee cup, the astronaut, the rocket, the
horse and the cat. They are scikit-image's samples `coffee`, `astronaut`, `rocket`, `horse` (a
black-on-white silhouette) and `chelsea`; the app's gallery (datasets/gallery.py) holds four of
them, so the horse is exported here beside them. The gallery's other photos are tagged too (not
scored). Function words are counted in every tag list by two lists: ours (text/vocab.py
STOP_WORDS, what the tag filter drops) and scikit-learn's independent ENGLISH_STOP_WORDS.

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

# The five photos: scikit-image sample -> the obvious words (a tag hits if one of its words is one of them).
OBVIOUS = {"coffee": {"coffee", "cup"}, "astronaut": {"astronaut", "person", "man"}, "rocket": {"rocket"}, "horse": {"horse"},
           "chelsea": {"cat"}}


def photos(folder: Path) -> dict[str, tuple[Path, bool]]:
    """Each photo's path and whether it is scored: the gallery's, and the issue's samples the gallery lacks."""
    from PIL import Image
    from skimage import data

    from vector_search.datasets.gallery import PHOTOS, export_gallery, photo_path

    export_gallery(folder)
    out = {p.name: (photo_path(folder, p), p.name in OBVIOUS) for p in PHOTOS}
    for name in sorted(set(OBVIOUS) - set(out)):
        out[name] = (folder / "extra" / f"{name}.png", True)
        out[name][0].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(getattr(data, name)()).convert("RGB").save(out[name][0])
    return out


def main() -> None:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    from vector_search.engine import Engine
    from vector_search.text.vocab import STOP_WORDS

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", type=Path, default=Path("features"))
    parser.add_argument("--models", type=Path, default=Path("/tmp/bench_sentence_models"))
    args = parser.parse_args()
    paths = photos(Path(tempfile.mkdtemp()) / "gallery")
    for text in ("glove", "minilm"):
        model = args.models / f"joint-{text}.npz"
        engine = Engine(args.store, model_path=model)
        if not model.is_file():
            engine.index(PASCAL)
            engine.train(text=text)
        hits, ours, theirs = 0, [], []
        print(f"\n{text} ({engine.joint.method} model trained on Pascal Sentences)")
        for name, (path, scored) in paths.items():
            tags = [r.item for r in engine.tags(path, 5)]
            words = [w for t in tags for w in t.split()]
            ours += [w for w in words if w in STOP_WORDS]
            theirs += [w for w in words if w in ENGLISH_STOP_WORDS]
            hit = scored and any(set(t.split()) & OBVIOUS[name] for t in tags)
            hits += hit
            print(f"  {name:18s} {'HIT ' if hit else '    ' if scored else '  - '} {', '.join(tags)}")
        print(f"  obvious word in the top 5: {hits} of {len(OBVIOUS)}; function words among all tags: "
              f"{len(ours)} (ours), {len(theirs)} (scikit-learn's list{': ' + ', '.join(theirs) if theirs else ''})")


if __name__ == "__main__":
    main()
