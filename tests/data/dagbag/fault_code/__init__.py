"""Step code for the fault tests' model (a DAGs-folder module, so the allow-list admits it)."""
