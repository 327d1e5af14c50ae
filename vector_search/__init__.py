"""vector_search: semantic search over images and words."""

from vector_search.config import quiet_tensorflow

quiet_tensorflow()

__version__ = "0.1.0"
