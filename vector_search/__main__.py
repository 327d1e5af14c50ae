"""`python -m vector_search` is the `vector-search` command."""

import sys

from .cli import main

sys.exit(main())
