"""Datasets: Pascal Sentences (download, captions) and the app's built-in gallery."""
