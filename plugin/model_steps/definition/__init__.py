"""What a model definition is: the YAML schema, reading files with positions, the loader.

Holds the pydantic schema (the single source of the JSON Schema, the field reference and the
validation messages), the position-keeping YAML reader, ``${VAR}`` interpolation, the loader
that turns a folder into validated specs and located problems, and the import allow-list.

May import: :mod:`model_steps.errors`, :mod:`model_steps.settings`,
:mod:`model_steps.libraries`. Never Airflow, never a scientific library at import time: DAG
parsing and ``model-steps validate`` run through here.
"""
