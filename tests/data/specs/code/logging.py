"""Named like the standard logging module: Python imports the standard one, never this file.

The security corpus proves that an empty ``logging.py`` in the DAGs folder admits nothing.
"""
