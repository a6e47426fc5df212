"""Everything that meets Airflow: DAG plans and their builder, operators, the plugin, its API.

Holds the Airflow-free plan of each model's DAGs and the builder that turns plans into
``airflow.sdk`` DAGs (the only code creating Airflow objects), the operators, DAG docs,
connections turned into storage options, and the plugin with its Models API and page (``ui/``).

May import every layer below. The only layer that imports Airflow, and only ``airflow.sdk``
to author DAGs; the API reads Airflow's metadata DB on the API server, as Airflow's own routes do.
"""
