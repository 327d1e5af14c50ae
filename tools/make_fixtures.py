"""Write tests/fixtures/: the small real photos, captions and GloVe slice the quick tests run on.

A clone tests itself with them (`python3 -m pytest -m "not slow and not browser"`), with nothing
beside the checkout; the slow end-to-end tests use Pascal Sentences, whose photos (Flickr, via
Pascal VOC) may not be committed.

- `dataset/<class>/<name>.jpg`: 12 photos, 3 classes x 4, made from scikit-image's bundled sample
  photos (CC0 or public domain, see tests/fixtures/README.md): each class is one photo framed 4
  ways (the whole frame, crops, a mirror, a little darker), 256 pixels on the long side, JPEG
  quality 85 (~10 KB each).
- `sentence/<class>/<name>.txt`: captions, one a line, laid out as Pascal Sentences ships them.
- `glove.slice.50d.txt`: the 1000 most frequent words of the packaged GloVe 6B 50-d, plus the
  words of the captions and class names, in GloVe's text format and order.

    python tools/make_fixtures.py        # rewrites tests/fixtures/ (deterministic)
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "tests" / "fixtures"
LONG_SIDE = 256
GLOVE_TOP = 1000


@dataclass(frozen=True)
class Framing:
    suffix: str
    box: tuple[float, float, float, float]  # left, top, right, bottom as fractions of the frame
    mirror: bool = False
    brightness: float = 1.0


FRAMINGS = (
    Framing("1", (0.0, 0.0, 1.0, 1.0)),
    Framing("2", (0.0, 0.05, 0.85, 0.95), mirror=True),
    Framing("3", (0.15, 0.1, 0.9, 0.9)),
    Framing("4", (0.1, 0.0, 1.0, 0.9), brightness=0.85),
)

# class -> (skimage.data function, captions shared by its photos)
SUBJECTS = {
    "cat": ("chelsea", [
        "A close up of a tabby cat's face.",
        "A cat with green eyes looks at the camera.",
        "The face of a brown striped cat with white whiskers.",
        "A young cat staring ahead.",
        "Close up of a cat with a pink nose.",
    ]),
    "cup": ("coffee", [
        "A red cup of coffee on a red saucer.",
        "A cup of espresso with a spoon on a wooden table.",
        "A coffee cup and saucer seen from above.",
        "A small red cup full of coffee.",
        "A hot drink on a wooden table.",
    ]),
    "rocket": ("rocket", [
        "A rocket on its launch pad at dusk.",
        "A white rocket between tall towers before launch.",
        "A space rocket lit up under a dark blue sky.",
        "The launch site of a rocket at night.",
        "A tall rocket stands ready for take off.",
    ]),
}


def photos() -> dict[Path, bytes]:
    """Every fixture photo: relative path -> JPEG bytes."""
    import io

    from PIL import Image, ImageEnhance, ImageOps
    from skimage import data

    out = {}
    for label, (source, _) in SUBJECTS.items():
        full = Image.fromarray(getattr(data, source)()).convert("RGB")
        for framing in FRAMINGS:
            w, h = full.size
            left, top, right, bottom = framing.box
            image = full.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))
            if framing.mirror:
                image = ImageOps.mirror(image)
            if framing.brightness != 1.0:
                image = ImageEnhance.Brightness(image).enhance(framing.brightness)
            image.thumbnail((LONG_SIDE, LONG_SIDE), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85, optimize=True)
            out[Path("dataset") / label / f"{source}-{framing.suffix}.jpg"] = buffer.getvalue()
    return out


def captions() -> dict[Path, str]:
    """Every photo's captions file: relative path -> text."""
    return {
        Path("sentence") / label / f"{source}-{framing.suffix}.txt": "\n".join(lines) + "\n"
        for label, (source, lines) in SUBJECTS.items()
        for framing in FRAMINGS
    }


def glove_slice(texts: list[str]) -> str:
    """The GloVe text lines of the top words plus every word of `texts`, in GloVe's order."""
    from vector_search.text.words import load_words

    glove = load_words()
    wanted = {w for text in texts for w in re.findall(r"[a-z]+", text.lower())}
    rows = sorted(set(range(GLOVE_TOP)) | {glove.index_of(w) for w in wanted if w in glove})
    vectors = np.asarray(glove.vectors)
    return "".join(f"{glove.words[i]} {' '.join(f'{x:.5f}' for x in vectors[i])}\n" for i in rows)


def main() -> None:
    texts = captions()
    files: dict[Path, bytes] = {**photos(), **{p: t.encode() for p, t in texts.items()}}
    files[Path("glove.slice.50d.txt")] = glove_slice([*texts.values(), *SUBJECTS]).encode()
    for rel, content in sorted(files.items()):
        path = OUT / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    total = sum(map(len, files.values()))
    print(f"wrote {len(files)} files, {total / 1024:.0f} KiB, under {OUT}")


if __name__ == "__main__":
    main()
