"""Quality figures: image retrieval, tags, zero-shot words, captions (`vector-search evaluate`)."""
