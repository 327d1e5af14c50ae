"""vector_search: semantic search over images and words."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's start-up chatter hides our output

__version__ = "0.1.0"
