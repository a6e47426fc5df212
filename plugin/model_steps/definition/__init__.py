"""What a model definition is: the YAML schema, reading files with positions, the loader.

Holds the pydantic schema (the single source of the JSON Schema, the field reference and the
validation messages) and its rules across fields, the position-keeping YAML reader, ``${VAR}``
interpolation of allowed variables, the loader that turns a folder into validated specs and
located problems, the import allow-list, the template sandbox and its checks, where templated
URLs and data may point, and which models would share a store.

May import: :mod:`model_steps.errors`, :mod:`model_steps.settings`,
:mod:`model_steps.libraries`. Never Airflow, never a scientific library at import time: DAG
parsing and ``model-steps validate`` run through here.
"""
