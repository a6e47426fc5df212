"""Named like the installed joblib: Python imports the installed one, never this file.

The security corpus proves that a DAGs-folder module of an installed module's name does not make
that module's functions (``joblib.load`` unpickles any file) the deployment's own code.
"""
