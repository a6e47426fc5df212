"""Airflow as a cluster on one machine: the docker/ topology without containers.

PostgreSQL (Debian's binaries, a private cluster in a temporary folder on a free port), Redis
(Debian's ``redis-server``), and Airflow's api-server, scheduler, dag-processor, triggerer and
Celery workers, each worker with its own working directory, ``TMPDIR`` and Airflow home, so they
share nothing but the DAGs folder, the metadata DB, the broker and S3. Every server runs in its
own process group and is stopped as a group.

The session fixture in ``tests/integration/conftest.py`` starts it for the distributed test,
``make run-cluster`` for a person (``python -m tests.cluster``), and ``bench/cluster.py`` to time
a training run under Celery.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.s3 import free_port

__all__ = ["Cluster", "Service", "postgres_bin", "start_cluster", "worker_name"]

REPO = Path(__file__).resolve().parents[1]
AIRFLOW = Path(sys.executable).with_name("airflow")
CONNECTION = "model_steps_s3"
"""The deployment's default connection: models without ``assets.conn_id`` reach S3 with it."""
WORKER_VARIABLE = "MODEL_STEPS_CLUSTER_WORKER"
UNPRIVILEGED = "nobody"
"""initdb and postgres refuse to run as root; as root, the cluster runs as this user."""
STARTUP_SECONDS = 120.0


def worker_name() -> str:
    """The name a task instance records as its host: which worker ran it.

    Airflow's ``[core] hostname_callable``; both workers share this machine's real name.
    """
    return os.environ.get(WORKER_VARIABLE) or "localhost"


def postgres_bin() -> Path:
    """The folder of PostgreSQL's server binaries (Debian keeps them off the PATH)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version_key)
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
    return versions[-1].parent


def _version_key(path: Path) -> int:
    number = path.parts[-3]
    return int(number) if number.isdigit() else 0


@dataclass
class Service:
    """One server process in its own process group, logging to a file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    scratch: Path | None = None
    """A folder of its own, removed once it stopped."""

    def alive(self) -> bool:
        """Whether the process is still running."""
        return self.process.poll() is None

    def stop(self) -> None:
        """Kill the whole process group (the server and every child) and reap it."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(timeout=10)
                break
            except subprocess.TimeoutExpired:
                continue
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def tail(self, chars: int = 3000) -> str:
        """The end of the log, for an error message."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


@dataclass
class Cluster:
    """A running cluster: where its API listens, its folders and its services."""

    root: Path
    dags: Path
    api_url: str
    env: Mapping[str, str]
    passwords_file: Path
    services: list[Service] = field(default_factory=list)
    workers: dict[str, Path] = field(default_factory=dict)
    """Each worker's own folder (its working directory, TMPDIR and Airflow home are inside)."""

    def token(self, user: str = "admin") -> str:
        """A JWT from Airflow's own login endpoint."""
        return login(self.api_url, user, json.loads(self.passwords_file.read_text())[user])

    def api(self, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
        """Call Airflow's REST API (``/api/v2``) as the admin; the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.api_url}/api/v2{path}",
            data=data,
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {token or self.token()}",
            },
            method=method,
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def check(self) -> None:
        """Raise with the log of any service that died."""
        for service in self.services:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited:\n{service.tail()}")

    def stop(self) -> None:
        """Stop every service, newest first."""
        for service in reversed(self.services):
            service.stop()


def login(base_url: str, user: str, password: str) -> str:
    """A fresh JWT for ``user`` from Airflow's own login endpoint (``POST /auth/token``)."""
    body = json.dumps({"username": user, "password": password}).encode()
    request = urllib.request.Request(
        f"{base_url}/auth/token",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.loads(response.read())["access_token"]
        return token


def prepare(
    root: Path, endpoint: str, bucket: str, model: Path | None = None
) -> tuple[Path, dict[str, str]]:
    """A bucket with the example data, and a DAGs folder: the loader and ``model``, else all
    of ``dags/``. Returns the folder and the ``s3`` settings :func:`start_cluster` takes."""
    from model_steps.examples import write_example_data
    from tests.s3 import create_bucket, storage_options

    create_bucket(endpoint, bucket)
    s3 = {
        "endpoint": endpoint,
        "key": "testing",
        "secret": "testing",
        "assets_root": f"s3://{bucket}/models",
        "data_root": f"s3://{bucket}/data",
    }
    write_example_data(s3["data_root"], storage_options(endpoint))
    dags = root / "dags"
    if model is None:
        shutil.copytree(REPO / "dags", dags)
        return dags, s3
    dags.mkdir()
    for name in ("model_steps_loader.py", ".airflowignore"):
        shutil.copy(REPO / "dags" / name, dags / name)
    shutil.copy(model, dags / model.name)
    return dags, s3


def _spawn(
    name: str,
    command: Sequence[str],
    env: Mapping[str, str],
    logs: Path,
    *,
    cwd: Path | None = None,
    user: str | None = None,
) -> Service:
    log = logs / f"{name}.log"
    handle: IO[bytes]
    with log.open("ab") as handle:
        process = subprocess.Popen(
            list(command),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
        )
    return Service(name, process, log)


def _wait(
    what: str, ready: Callable[[], bool], services: Sequence[Service], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        for service in services:
            if not service.alive():
                raise RuntimeError(f"{service.name} exited before {what}:\n{service.tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {s.name}\n{s.tail(1500)}" for s in services)
            raise RuntimeError(f"{what} not within {timeout:.0f}s\n{logs}")
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


# -- PostgreSQL and Redis ----------------------------------------------------------------------


def _start_postgres(logs: Path) -> tuple[Service, int]:
    """A private PostgreSQL cluster: initdb in a temporary folder, trust auth on loopback only.

    As root, initdb and postgres run as an unprivileged user (they refuse root), in a folder of
    its own under the system's temporary folder (which that user can reach).
    """
    binaries = postgres_bin()
    user = UNPRIVILEGED if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="model-steps-postgres-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data = folder / "data"
    initdb = subprocess.run(
        [
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "airflow",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        capture_output=True,
        text=True,
        user=user,
        cwd=folder,
    )
    if initdb.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed:\n{initdb.stdout}{initdb.stderr}")
    port = free_port()
    server = _spawn(
        "postgres",
        [
            str(binaries / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-k",
            str(folder),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ],
        {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"},
        logs,
        cwd=folder,
        user=user,
    )
    server.scratch = folder
    ready = [str(binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)]
    _wait("PostgreSQL", lambda: subprocess.run(ready).returncode == 0, [server], 30)
    subprocess.run(
        [
            str(binaries / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-U",
            "airflow",
            "airflow",
        ],
        check=True,
        capture_output=True,
    )
    return server, port


def _start_redis(folder: Path, logs: Path) -> tuple[Service, int]:
    redis = shutil.which("redis-server")
    if redis is None:
        raise RuntimeError("Redis is not installed: apt-get install redis-server")
    folder.mkdir(parents=True)
    port = free_port()
    server = _spawn(
        "redis",
        [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        {"PATH": os.environ.get("PATH", "")},
        logs,
        cwd=folder,
    )
    probe = [shutil.which("redis-cli") or "redis-cli", "-p", str(port), "ping"]
    _wait("Redis", lambda: subprocess.run(probe, capture_output=True).returncode == 0, [server], 20)
    return server, port


# -- Airflow -----------------------------------------------------------------------------------


def _airflow_env(
    root: Path, dags: Path, db: int, broker: int, api: int, s3: Mapping[str, str]
) -> dict[str, str]:
    """What every Airflow process shares: one DB, broker, secrets, API URL and DAGs folder.

    Nothing of the caller's Airflow or AWS settings leaks in: the S3 credentials reach the
    tasks only through the deployment's default connection.
    """
    from cryptography.fernet import Fernet

    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "AWS_", "MODEL_STEPS_", "_AIRFLOW"))
    }
    database = f"postgresql+psycopg2://airflow@127.0.0.1:{db}/airflow"
    connection = {
        "conn_type": "aws",
        "login": s3["key"],
        "password": s3["secret"],
        "extra": {"endpoint_url": s3["endpoint"], "region_name": "us-east-1"},
    }
    return {
        **inherited,
        # the checkout's plugin (not an installed copy), and tests/cluster.py's hostname callable
        "PYTHONPATH": os.pathsep.join([str(REPO / "plugin"), str(REPO)]),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api}/execution/",
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.cluster.worker_name",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(root / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{broker}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",  # SQLAlchemy 2.1 needs +psycopg2
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api}",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "logs" / "tasks"),
        f"AIRFLOW_CONN_{CONNECTION.upper()}": json.dumps(connection),
        "MODEL_STEPS_CONN_ID": CONNECTION,
        "MODEL_STEPS_ASSETS_ROOT": s3["assets_root"],
        "MODEL_STEPS_DATA_ROOT": s3["data_root"],
    }


def _home(folder: Path, env: Mapping[str, str], **extra: str) -> dict[str, str]:
    """A process's own Airflow home, working directory and TMPDIR inside ``folder``."""
    for part in ("home", "work", "tmp"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    return {**env, "AIRFLOW_HOME": str(folder / "home"), "TMPDIR": str(folder / "tmp"), **extra}


def start_cluster(
    root: Path,
    dags: Path,
    s3: Mapping[str, str],
    *,
    workers: Sequence[Sequence[str]] = (("default",), ("default",)),
    api_port: int | None = None,
    settings: Mapping[str, str] | None = None,
) -> Cluster:
    """Start the whole cluster under ``root``; each entry of ``workers`` lists its queues.

    ``s3`` holds ``endpoint``, ``key``, ``secret``, ``assets_root`` and ``data_root``;
    ``settings`` are environment variables every Airflow process gets on top of the cluster's.
    Stops whatever it started if any part fails to come up.
    """
    logs = root / "logs"
    logs.mkdir(parents=True)
    services: list[Service] = []
    try:
        postgres, db = _start_postgres(logs)
        services.append(postgres)
        redis, broker = _start_redis(root / "redis", logs)
        services.append(redis)
        api = api_port or free_port()
        env = {**_airflow_env(root, dags, db, broker, api, s3), **(settings or {})}
        cluster = Cluster(root, dags, f"http://127.0.0.1:{api}", env, root / "passwords.json")
        cluster.services = services
        control = _home(root / "control", env)
        migrate = subprocess.run(
            [str(AIRFLOW), "db", "migrate"],
            env=control,
            cwd=root / "control" / "work",
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"airflow db migrate failed:\n{migrate.stdout}{migrate.stderr}")
        _start_airflow(cluster, control, api, workers)
        return cluster
    except BaseException:
        for service in reversed(services):
            service.stop()
        raise


def _start_airflow(
    cluster: Cluster, control: dict[str, str], api: int, workers: Sequence[Sequence[str]]
) -> None:
    logs = cluster.root / "logs"
    work = cluster.root / "control" / "work"
    health = free_port()
    scheduler_env = {
        **control,
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(health),
    }
    commands = {
        "api-server": (
            [str(AIRFLOW), "api-server", "--host", "127.0.0.1", "--port", str(api)],
            control,
        ),
        "scheduler": ([str(AIRFLOW), "scheduler"], scheduler_env),
        "dag-processor": ([str(AIRFLOW), "dag-processor"], control),
        "triggerer": (
            [str(AIRFLOW), "triggerer"],
            {**control, "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port())},
        ),
    }
    for name, (command, env) in commands.items():
        cluster.services.append(_spawn(name, command, env, logs, cwd=work))
    for number, queues in enumerate(workers, start=1):
        name = f"worker-{number}"
        folder = cluster.root / name
        env = _home(
            folder,
            cluster.env,
            **{
                WORKER_VARIABLE: name,
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            },
        )
        command = [
            str(AIRFLOW),
            "celery",
            "worker",
            "--concurrency",
            "1",
            "--queues",
            ",".join(queues),
            "--celery-hostname",
            f"{name}@%h",
        ]
        cluster.services.append(_spawn(name, command, env, logs, cwd=folder / "work"))
        cluster.workers[name] = folder
    _wait(
        "the api-server and the scheduler answering",
        lambda: (
            _answers(f"{cluster.api_url}/api/v2/monitor/health")
            and _answers(f"http://127.0.0.1:{health}/health")
            and cluster.passwords_file.exists()
        ),
        cluster.services,
        STARTUP_SECONDS,
    )


def _main() -> int:
    """``make run-cluster``: the example models on a cluster with a moto S3, until Ctrl-C."""
    from tests.s3 import MotoServer

    root = Path(tempfile.mkdtemp(prefix="model-steps-cluster-"))
    with MotoServer(root / "moto.log").start() as moto:
        dags, s3 = prepare(root, moto.endpoint, "model-steps")
        port = int(os.environ.get("CLUSTER_API_PORT", "8080"))
        cluster = start_cluster(root, dags, s3, api_port=port)
        try:
            print(f"Airflow UI: {cluster.api_url}  (admin, password in {cluster.passwords_file})")
            print(f"S3 (moto): {moto.endpoint}, bucket model-steps; logs and homes under {root}")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    cluster.check()
                    time.sleep(2)
        finally:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
