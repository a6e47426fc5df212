"""The corpus's own step code: what a DAGs folder's code package holds."""
