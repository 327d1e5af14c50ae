"""Text: GloVe word vectors, sentences weighed into word space, WordNet synonyms, the query grammar."""
