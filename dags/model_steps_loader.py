"""Airflow DAG loader for airflow-model-steps: each model YAML under this folder becomes DAGs.

A task start sets Airflow's parsing context, so only that task's own DAG is built then.
"""

import os
from pathlib import Path

from airflow.sdk import get_parsing_context

from model_steps.airflow.dags import build_dags

globals().update(build_dags(Path(__file__).parent, os.environ, get_parsing_context().dag_id))
