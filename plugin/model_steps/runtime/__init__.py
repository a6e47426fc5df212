"""What a task does, without Airflow: run one step, move tables, train, infer and publish.

Holds the step kinds, what a definition's names resolve to, the checks run before any work
(``validate`` and the train DAG's ``check`` task), serializers (and estimators' own formats),
metrics, data splits, carried columns, tables, a run's scratch, input partitions and their parts
(:mod:`~model_steps.runtime.partitioned`) and the train, infer and publish functions the
operators call. Batch inference and real-time handlers share :mod:`model_steps.runtime.infer`,
so both compute predictions with the same code.

May import: :mod:`model_steps.definition`, :mod:`model_steps.store` and the top-level errors,
settings and libraries. Never Airflow; pandas and scikit-learn only inside the functions that
need them.
"""
