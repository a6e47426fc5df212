"""Where versions live: the fsspec store, its atomic publish protocol, manifests and cards.

Holds the store of one model (layout, claims, the pointer, rollback, retention), the conditional
writes each backend offers, checksums, the pointer and manifest documents, model cards, and the
runs' scratch folders retention looks at.

May import: :mod:`model_steps.definition` and the top-level errors, settings and libraries.
Never Airflow: handlers read stores without it.
"""
