"""The feature store: photos' vectors and item tables on disk (format, migration, incremental updates, locks, samples)."""
