"""docker/compose.yaml run without Docker: its Airflow services as local processes.

No container engine runs here, so the file is read the way Compose reads it (``${VAR:-default}``
interpolation, ``$$`` escapes, YAML merge keys, ``depends_on`` order) and each Airflow service
runs with its own environment, its own command through the image's entrypoint script
(``docker/entrypoint.sh``) or its own ``entrypoint``, in a folder of its own (its Airflow home,
working directory and ``TMPDIR``). What a container engine would provide is mapped, and only
that: the service host names (``postgres:5432``, ``redis:6379``, ``s3:5000``,
``airflow-apiserver:8080``) become the test's own PostgreSQL, Redis and S3 server and a free
port on 127.0.0.1, the bind mount of ``dags/`` becomes a folder on disk, the image's Python is
this one, and the Airflow image's ``/entrypoint`` is :data:`IMAGE_ENTRYPOINT`, its documented
dispatch (``bash``/``python`` run as they are, anything else becomes ``airflow ...``).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

import yaml

from tests.cluster import REPO, Service, _spawn, _start_postgres, _start_redis, _wait
from tests.s3 import free_port

__all__ = ["COMPOSE", "IMAGE_ENTRYPOINT", "ComposeStack", "interpolate", "load_compose"]

COMPOSE = REPO / "docker" / "compose.yaml"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
IMAGE_ENTRYPOINT = """\
#!/usr/bin/env bash
# The Airflow image's /entrypoint, as far as dispatching a command goes.
set -euo pipefail
case "${1:-}" in
    bash) shift; exec /bin/bash "$@" ;;
    python) shift; exec python "$@" ;;
    airflow) shift ;;
esac
exec airflow "$@"
"""
INFRASTRUCTURE = {"postgres": 5432, "redis": 6379, "s3": 5000}
"""Services the test runs itself, with the port each one's clients name."""
API = "airflow-apiserver"
API_PORT = 8080
SCHEDULER_HEALTH_PORT = 8974
CONTAINER_DAGS = "/opt/airflow/dags"
STARTUP_SECONDS = 180.0
INIT_SECONDS = 300.0

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolate(value: Any, variables: Mapping[str, str]) -> Any:
    """Compose's interpolation on a parsed value: ``${VAR}``, ``${VAR:-default}``, ``$$``."""
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            found = variables.get(name)
            return found if found else (default or "")

        return _VARIABLE.sub(substitute, value)
    if isinstance(value, list):
        return [interpolate(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, variables) for key, item in value.items()}
    return value


def load_compose(variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose sees it, with ``variables`` as its ``.env``."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    result: dict[str, Any] = interpolate(loaded, variables or {})
    return result


def start_order(services: Mapping[str, Any]) -> list[str]:
    """Service names in ``depends_on`` order (what each needs comes first)."""
    graph = {name: set(spec.get("depends_on", {})) for name, spec in services.items()}
    return list(TopologicalSorter(graph).static_order())


@dataclass
class ComposeStack:
    """The compose file's services, running: where each listens and what it wrote."""

    root: Path
    dags: Path
    api_url: str
    ports: dict[str, int]
    services: dict[str, dict[str, Any]]
    running: list[Service] = field(default_factory=list)
    init: subprocess.CompletedProcess[str] | None = None
    health: dict[str, str] = field(default_factory=dict)
    """Each service's last health check: its exit status and output."""

    def environment(self, name: str, folder: Path) -> dict[str, str]:
        """Service ``name``'s own environment, host names mapped, in its own folder."""
        for part in ("home", "work", "tmp"):
            (folder / part).mkdir(parents=True, exist_ok=True)
        declared = self.services[name].get("environment", {})
        mapped = {key: self._map_hosts(str(value)) for key, value in declared.items()}
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "AWS_", "MODEL_STEPS_", "_AIRFLOW"))
        }
        # The image: its Python and packages, this checkout's code (as the image's install),
        # an Airflow home, a host name, and the ports a container would publish.
        python_path = os.pathsep.join([str(REPO / "plugin"), str(REPO)])
        image = {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": python_path,
            "AIRFLOW_HOME": str(folder / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW_IMAGE_ENTRYPOINT": str(self.root / "image-entrypoint"),
            # A container's host name is also its fully qualified one, which Airflow records
            # for its jobs and the health checks look up as $HOSTNAME.
            "HOSTNAME": socket.gethostname(),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "socket.gethostname",
            "TMPDIR": str(folder / "tmp"),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.ports[API]),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(self.ports["health"]),
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        return {**inherited, **mapped, **image}

    def command(self, name: str, argv: list[str] | None = None) -> list[str]:
        """What the container runs: its ``entrypoint`` else the image's, then its command."""
        spec = self.services[name]
        entrypoint = spec.get("entrypoint")
        command = argv if argv is not None else spec.get("command", [])
        if isinstance(command, str):
            command = command.split()
        if entrypoint is None:
            return [str(ENTRYPOINT), *command]
        if isinstance(entrypoint, str):
            entrypoint = entrypoint.split()
        return [*entrypoint, *command]

    def run_once(
        self, name: str, argv: list[str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``docker compose run --rm NAME ARGV`` (the service's own command without ARGV)."""
        folder = self.root / f"{name}-{len(list(self.root.glob(f'{name}-*')))}"
        return subprocess.run(
            self.command(name, argv),
            env=self.environment(name, folder),
            cwd=folder / "work",
            capture_output=True,
            text=True,
            timeout=INIT_SECONDS,
        )

    def start(self, name: str) -> Service:
        """Start a long-running service in the background, in its own process group."""
        folder = self.root / name
        service = _spawn(
            name,
            self.command(name),
            self.environment(name, folder),
            self.root / "logs",
            cwd=folder / "work",
        )
        self.running.append(service)
        return service

    def healthy(self, name: str) -> bool:
        """Whether the service's own health check, as written (ports mapped), passes."""
        test = self.services[name]["healthcheck"]["test"]
        kind, *argv = test
        argv = [self._map_hosts(part) for part in argv]
        if kind == "CMD-SHELL":
            argv = ["/bin/sh", "-c", argv[0]]
        folder = self.root / name
        done = subprocess.run(
            argv, env=self.environment(name, folder), capture_output=True, text=True, timeout=60
        )
        self.health[name] = f"exit {done.returncode}: {done.stdout[-500:]}{done.stderr[-1500:]}"
        return done.returncode == 0

    def stop(self) -> None:
        """Stop every service, newest first."""
        for service in reversed(self.running):
            service.stop()

    def _map_hosts(self, text: str) -> str:
        """URLs naming a service (``@postgres:5432``, ``//s3:5000``) name 127.0.0.1 instead."""
        hosts = {**INFRASTRUCTURE, API: API_PORT}
        for host, port in hosts.items():
            text = re.sub(rf"(?<=[/@]){host}:{port}\b", f"127.0.0.1:{self.ports[host]}", text)
        published = {API_PORT: self.ports[API], SCHEDULER_HEALTH_PORT: self.ports["health"]}
        for inside, outside in published.items():
            text = text.replace(f"//localhost:{inside}/", f"//127.0.0.1:{outside}/")
        return text


def dags_folder(root: Path, services: Mapping[str, Any]) -> Path:
    """The folder the Airflow services mount at /opt/airflow/dags: a copy of the repository's.

    ``AIRFLOW_PROJ_DIR`` (the variable the compose file reads) points at ``root``.
    """
    mounts = {
        mount for spec in services.values() for mount in spec.get("volumes", []) if ":" in mount
    }
    (source,) = {m.split(":")[0] for m in mounts if m.endswith(f":{CONTAINER_DAGS}")}
    folder = Path(source)
    assert folder == root / "dags", f"the DAGs mount is {source}, not under AIRFLOW_PROJ_DIR"
    shutil.copytree(REPO / "dags", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def start_compose(root: Path, s3_endpoint: str, variables: Mapping[str, str]) -> ComposeStack:
    """Everything but the Airflow services (ours), then the init job, then the rest in order.

    Raises with the init job's output if it fails, and stops whatever it started if anything
    does not come up.
    """
    services = load_compose({"AIRFLOW_PROJ_DIR": str(root), **variables})["services"]
    (root / "logs").mkdir(parents=True)
    (root / "image-entrypoint").write_text(IMAGE_ENTRYPOINT)
    (root / "image-entrypoint").chmod(0o755)
    started: list[Service] = []
    try:
        postgres, db = _start_postgres(root / "logs")
        started.append(postgres)
        redis, broker = _start_redis(root / "redis", root / "logs")
        started.append(redis)
        ports = {
            "postgres": db,
            "redis": broker,
            "s3": int(s3_endpoint.rsplit(":", 1)[1]),
            API: free_port(),
            "health": free_port(),
        }
        stack = ComposeStack(
            root,
            dags_folder(root, services),
            f"http://127.0.0.1:{ports[API]}",
            ports,
            services,
            started,
        )
        for name in start_order(services):
            if name in INFRASTRUCTURE:
                continue
            _wait_for_dependencies(stack, name)
            if services[name].get("restart") == "no":
                stack.init = stack.run_once(name)
                if stack.init.returncode != 0:
                    raise RuntimeError(
                        f"{name} exited {stack.init.returncode}:\n"
                        f"{stack.init.stdout[-3000:]}\n{stack.init.stderr[-5000:]}"
                    )
            else:
                stack.start(name)
        try:
            _wait(
                "every service healthy",
                lambda: all(stack.healthy(n) for n in _long_running(services)),
                stack.running,
                STARTUP_SECONDS,
            )
        except RuntimeError as error:
            raise RuntimeError(f"{error}\nhealth checks: {stack.health}") from None
        return stack
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise


def _long_running(services: Mapping[str, Any]) -> Iterator[str]:
    for name, spec in services.items():
        if name not in INFRASTRUCTURE and spec.get("restart") != "no":
            yield name


def _wait_for_dependencies(stack: ComposeStack, name: str) -> None:
    """Block until each ``service_healthy`` dependency that is ours passes its health check."""
    for needed, how in stack.services[name].get("depends_on", {}).items():
        if needed in INFRASTRUCTURE or how["condition"] != "service_healthy":
            continue
        _wait(
            f"{needed} healthy", lambda n=needed: stack.healthy(n), stack.running, STARTUP_SECONDS
        )
