"""The session API server's auth manager: SimpleAuthManager, plus a user outside every team.

SimpleAuthManager lets a viewer read every DAG; a platform sharing one Airflow gives each team
its own DAGs. ``outsider`` (a viewer) may read only DAGs whose ids start with ``outsiders_``,
so the API's answers for models a user may not read can be tested on a real server.
"""

from __future__ import annotations

from typing import Any

from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

OUTSIDER = "outsider"
OUTSIDERS_PREFIX = "outsiders_"


class TeamAuthManager(SimpleAuthManager):
    """SimpleAuthManager where ``outsider`` reads only its own team's DAGs."""

    def is_authorized_dag(self, *, method: Any, user: Any, **kwargs: Any) -> bool:
        """``outsider`` may read only ``outsiders_*`` DAGs; everyone else as SimpleAuthManager."""
        details = kwargs.get("details")
        dag_id = getattr(details, "id", None)
        if user.get_name() == OUTSIDER and not (dag_id or "").startswith(OUTSIDERS_PREFIX):
            return False
        return bool(super().is_authorized_dag(method=method, user=user, **kwargs))
