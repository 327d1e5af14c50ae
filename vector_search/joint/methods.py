"""The joint methods by name: how each is fitted on labelled features, and how a saved model of it
maps features into the word space.

To add a method: write a module beside this one with `fit(data: TrainingData) -> (arrays, meta)`
(its weights, and what its sidecar records: `settings`, maybe a `history`; `settings` a frozen
dataclass with the defaults, which `train(..., settings=...)` passes on) and
`transform(arrays, meta, features) -> (n, word dim) unit rows`, then list it in METHODS below
(with `tags=` another transform if tags should be read from other vectors than search's).
`train()` validates and splits the photos for it, `JointModel` saves, loads and runs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from vector_search.joint import blend, captions, conse, hybrid, sentence
from vector_search.joint.errors import TrainingError

Arrays = dict[str, np.ndarray]


Transform = Callable[[Arrays, dict[str, Any], np.ndarray], np.ndarray]
Settings = blend.BlendSettings | hybrid.HybridSettings | captions.CaptionSettings | sentence.SentenceSettings  # a method's, frozen: passed to its fit


@dataclass(frozen=True)
class Method:
    """A method: how a saved model of it runs (numpy only), how it is fitted, and (if not its joint
    vectors) which vectors its tags are read from."""

    transform: Transform
    fit: Callable[..., tuple[Arrays, dict[str, Any]]] | None  # fit(data, settings=defaults); None: nothing to fit (ConSE)
    tags: Transform | None = None  # the vectors tags are read from, if not the joint vectors
    encoder_view: Transform | None = None  # what the image encoder itself sees (ImageNet ConSE): tagging.OPEN_TAGS of the tags come from it
    text: str = "glove"  # the text space it maps into: "glove" (word vectors) or "minilm" (the sentence encoder)


METHODS_BY_NAME: dict[str, Method] = {
    "blend": Method(blend.transform, blend.fit),
    "hybrid": Method(hybrid.transform, hybrid.fit),
    "conse": Method(conse.transform, None),
    "captions": Method(captions.transform, captions.fit, tags=blend.transform),
    "sentence": Method(sentence.transform, sentence.fit, tags=sentence.tag_transform, encoder_view=conse.transform, text="minilm"),
}
METHODS = tuple(METHODS_BY_NAME)
TRAINABLE = tuple(name for name, method in METHODS_BY_NAME.items() if method.fit is not None)
DEFAULT_METHOD = "blend"  # of the GloVe methods (`train --text glove`)
SENTENCE_METHOD = "sentence"  # the default: the sentence encoder's space


def default_method(has_captions: bool, text: str = "minilm") -> str:
    """What `train` fits when no method is named: in the sentence encoder's space ("minilm") the
    sentence method (with the captions if any); in GloVe's "captions" where the photos have captions,
    else the blend."""
    if text == "minilm":
        return SENTENCE_METHOD
    return "captions" if has_captions else DEFAULT_METHOD


def get(name: str) -> Method:
    """The method called `name`; ValueError naming the choices if there is none."""
    if name not in METHODS_BY_NAME:
        raise TrainingError(f"unknown joint method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS_BY_NAME[name]
