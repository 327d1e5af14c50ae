"""`python -m vector_search` is the `vector-search` command."""

import sys

from vector_search.cli import main

sys.exit(main())
