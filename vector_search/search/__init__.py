"""Nearest-neighbour search: one index interface (exact, Annoy, HNSW, IVF-PQ with a fresh segment), the spaces built on it, the 2-D map."""
