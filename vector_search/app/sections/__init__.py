"""The page's numbered sections, one module per concern (see vector_search/app/__init__.py)."""
