"""Custom step code for the example models (importable by steps, not parsed for DAGs)."""
