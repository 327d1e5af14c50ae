"""The joint package's errors (a leaf module: every method and the model import it)."""

from __future__ import annotations

from vector_search.errors import VectorSearchError


class ModelNotFoundError(VectorSearchError, FileNotFoundError):
    """No saved joint model at the given path."""


class TrainingError(VectorSearchError, ValueError):
    """Training cannot start as asked: too few classes or photos, a class with no word, no classifier."""


class ModelMismatchError(VectorSearchError, ValueError):
    """A joint model used with other image features or word vectors than it was trained on."""
