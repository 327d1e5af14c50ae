"""vector_search: semantic search over images and words."""

__version__ = "0.1.0"
