"""The Models API the plugin mounts on Airflow's API server (``/model-steps``).

What a user sees of each model joins three sources, each read live: the definitions Airflow's
DAG processor stored in the metadata DB from whichever DAG bundle holds them (an outline in each
model's train DAG, so this server needs no DAG file), overlaid by this server's own DAGs folder
when it has one; Airflow's pause state and last runs (a toggle in the UI shows at once); and the
model's store (versions, metrics, card). A store
that cannot be reached only marks its own model. Every route sits behind Airflow's own
authentication (a JWT as a bearer token or the UI's session cookie), because Airflow does not
guard plugin apps by itself; changes also need edit permission on both of the model's DAGs.
"""

from model_steps.airflow.api.app import create_app

__all__ = ["create_app"]
