"""airflow-model-steps: model definitions (YAML) to Airflow DAGs that train, infer and publish.

The package is layered; each subpackage imports only the ones above it in this list, and only
:mod:`model_steps.airflow` imports Airflow (``tests/unit/test_layers.py`` enforces both):

- :mod:`model_steps.definition`: the YAML schema, its loader and the import allow-list.
- :mod:`model_steps.store`: versions in an fsspec store, their manifests and model cards.
- :mod:`model_steps.runtime`: what a task does (train, infer, publish), without Airflow.
- :mod:`model_steps.serving`: real-time handlers and ``model-steps serve`` (its entry point is
  also importable as :mod:`model_steps.handler`).
- :mod:`model_steps.airflow`: DAGs, operators, the plugin and its Models API and page.

Beside them: :mod:`model_steps.errors`, :mod:`model_steps.settings` and
:mod:`model_steps.libraries` (which every layer may use), and :mod:`model_steps.cli` and
:mod:`model_steps.examples` (which may use every layer).
"""
