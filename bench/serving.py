"""Serving benchmark: ``model-steps serve`` against a FastAPI + scikit-learn floor and MLServer.

One model (a StandardScaler and a 40-tree RandomForestClassifier on 10,000 x 30 generated rows),
served by one server at a time on loopback:

* **ours**: ``model-steps serve`` on the version trained and published with ``model_steps``;
  also with ``--no-batching``, to show what batching does;
* **floor**: the least a hand-written service does: FastAPI on uvicorn, a typed body
  (``list[dict[str, float]]``), ``pd.DataFrame(records)`` and ``Pipeline.predict`` on a joblib
  pipeline trained the same way (so it predicts the same labels); the pipeline passes the
  scaler's array to the forest, as our steps do;
* **MLServer** (if it installs from PyPI): its scikit-learn runtime with the tensor codec (one
  FP64 array; ``--mlserver-pandas`` adds the pandas codec, one input per column), at its default
  settings, in its own virtualenv under ``bench/.venvs/`` (created here, git-ignored, never part
  of ``make test``).

Each server starts (the time from its process starting to its first answered prediction), then
answers, in this order: one client sending one record at a time (p50, p99); eight clients
sending one record at a time for a fixed time (requests/s, p50, p99); one client sending 1,000
records at a time (p50). Around the first two, the server's CPU time (its worker processes
included) over the requests answered gives its CPU per request: a figure the other jobs on a
shared machine disturb far less than latencies. The load generator is a second process whose
client threads each keep one raw HTTP/1.1 connection. Servers take turns, in reversed order
every other round, for ``--rounds`` rounds; ratios are medians of the per-round ratios. All
servers must predict the same labels first. The load average is printed before and after.

Usage: ``python bench/serving.py [--rounds 3] [--seconds 8] [--no-mlserver] [--quick]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import handler as handler_bench  # noqa: E402  (bench/handler.py: data, training, ports)
from peers import VENVS, peer_python  # noqa: E402

MLSERVER_VENV = VENVS / "mlserver"
MLSERVER_PACKAGES = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1", "uvloop==0.21.0")
"""uvloop as of MLServer 1.7.1's release: its workers fail to start on uvloop 0.22 and later."""
CLIENTS = 8
BATCH_ROWS = 1000
STARTUP_SECONDS = 120.0
TARGETS = {
    "single_p50": 1.05,  # ours / floor, at most
    "single_p99": 1.1,  # ours / floor, at most
    "throughput": 3.0,  # ours / floor, 8 clients, at least
    "load_p99": 0.5,  # ours / floor, 8 clients, at most
    "batch_p50": 1.0,  # ours / floor, 1,000 rows, at most
}
POLL_SECONDS = 0.01
"""How often a starting server is asked for its first prediction."""


# --------------------------------------------------------------------------------------------
# Requests each server understands
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    """How to start one server, and how to ask it for predictions."""

    name: str
    command: Callable[[int], list[str]]
    path: str
    body: Callable[[Any], bytes]
    """Records (a DataFrame) -> request body."""
    labels: Callable[[bytes], list[Any]]
    """Response body -> predicted labels."""


def records_body(frame: Any) -> bytes:
    return json.dumps(frame.to_dict(orient="records")).encode()


def ours_labels(data: bytes) -> list[Any]:
    return list(json.loads(data)["predictions"])


def v2_tensor_body(frame: Any) -> bytes:
    values = frame.to_numpy()
    tensor = {
        "name": "input-0",
        "shape": list(values.shape),
        "datatype": "FP64",
        "data": values.ravel().tolist(),
    }
    return json.dumps({"inputs": [tensor]}).encode()


def v2_pandas_body(frame: Any) -> bytes:
    columns = [
        {"name": str(c), "shape": [len(frame)], "datatype": "FP64", "data": frame[c].tolist()}
        for c in frame.columns
    ]
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": columns}).encode()


def v2_labels(data: bytes) -> list[Any]:
    return list(json.loads(data)["outputs"][0]["data"])


# --------------------------------------------------------------------------------------------
# The floor: a bare FastAPI service (run with --floor)
# --------------------------------------------------------------------------------------------


def floor_server(model_path: str, port: int) -> int:
    """What a hand-written FastAPI + scikit-learn service does, and no more."""
    import joblib
    import pandas as pd
    import uvicorn
    from fastapi import FastAPI

    app = FastAPI()
    model = joblib.load(model_path)

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/predict")
    def predict(records: list[dict[str, float]]) -> dict[str, Any]:
        return {"predictions": model.predict(pd.DataFrame(records)).tolist()}

    uvicorn.run(app, host="127.0.0.1", port=port, access_log=False, log_level="warning")
    return 0


# --------------------------------------------------------------------------------------------
# The load generator (run with --load)
# --------------------------------------------------------------------------------------------


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    """One keep-alive connection sending a prebuilt request and reading whole responses."""

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = request
        self.buffer = b""

    def send(self) -> bytes:
        self.sock.sendall(self.request)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self._recv()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1]
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            rest += self._recv()
        body, self.buffer = rest[:length], rest[length:]
        if status != b"200":
            raise RuntimeError(f"status {status.decode()}: {body[:300]!r}")
        return body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        return chunk


def load_main(spec: dict[str, Any]) -> dict[str, Any]:
    """Latencies (seconds) of one phase: ``clients`` threads for ``count`` requests or seconds."""
    request = http_request(spec["port"], spec["path"], Path(spec["body"]).read_bytes())
    clients, deadline = spec["clients"], spec.get("seconds")
    latencies: list[list[float]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)

    def client(index: int) -> None:
        conn = Connection(spec["port"], request)
        start.wait()
        end = time.perf_counter() + deadline if deadline else None
        while (end is None and len(latencies[index]) < spec["count"]) or (
            end is not None and time.perf_counter() < end
        ):
            began = time.perf_counter()
            conn.send()
            latencies[index].append(time.perf_counter() - began)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    return {"latencies": [t for per in latencies for t in per], "seconds": elapsed}


# --------------------------------------------------------------------------------------------
# Set-up: the model, the floor's pipelines, MLServer's folder and virtualenv
# --------------------------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything the servers need, under one temporary folder."""

    root: Path
    work: Any
    frame: Any
    servers: list[Server] = field(default_factory=list)


def prepare(root: Path, args: argparse.Namespace) -> Setup:
    """Train and publish our model, fit the floor's pipelines, write MLServer's settings."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    work = handler_bench.Workspace(root, str(root / "assets"), {})
    table = handler_bench.write_inputs(work, args.rows, args.features, args.trees)
    handler_bench.train_and_publish(work)
    features, target = table.drop(columns="label"), table["label"]

    def pipeline() -> Any:
        forest = RandomForestClassifier(n_estimators=args.trees, random_state=0)
        return make_pipeline(StandardScaler(), forest)

    joblib.dump(pipeline().fit(features, target), root / "floor.joblib")
    joblib.dump(pipeline().fit(features.to_numpy(), target), root / "tensor.joblib")
    setup = Setup(root, work, features)
    python, serve = sys.executable, str(handler_bench.CLI)
    definition = str(work.definition)
    setup.servers = [
        Server(
            "floor (FastAPI)",
            lambda port: [python, __file__, "--floor", str(root / "floor.joblib"), str(port)],
            "/predict",
            records_body,
            ours_labels,
        ),
        Server(
            "ours",
            lambda port: [serve, "serve", definition, "--port", str(port)],
            "/predict",
            records_body,
            ours_labels,
        ),
    ]
    if args.unbatched:
        setup.servers.append(
            Server(
                "ours, no batching",
                lambda port: [serve, "serve", definition, "--no-batching", "--port", str(port)],
                "/predict",
                records_body,
                ours_labels,
            )
        )
    codecs = [("tensor", v2_tensor_body)]
    if args.mlserver_pandas:
        codecs.append(("pandas", v2_pandas_body))
    if args.mlserver and mlserver_python() is not None:
        write_mlserver_folder(root)
        setup.servers += [
            Server(
                f"MLServer {codec}",
                lambda port: mlserver_command(root, port),
                f"/v2/models/forest-{codec}/infer",
                body,
                v2_labels,
            )
            for codec, body in codecs
        ]
    return setup


def mlserver_python() -> Path | None:
    """MLServer's own interpreter (installed from PyPI on first use), or None if it fails."""
    import sklearn

    return peer_python("mlserver", [*MLSERVER_PACKAGES, f"scikit-learn=={sklearn.__version__}"])


def write_mlserver_folder(root: Path) -> None:
    folder = root / "mlserver"
    for codec, model in (("tensor", "tensor.joblib"), ("pandas", "floor.joblib")):
        models = folder / f"forest-{codec}"
        models.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / model, models / "model.joblib")
        settings = {
            "name": f"forest-{codec}",
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }
        (models / "model-settings.json").write_text(json.dumps(settings))


def mlserver_command(root: Path, port: int) -> list[str]:
    folder = root / "mlserver"
    settings = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": handler_bench.free_port(),
        "metrics_port": handler_bench.free_port(),
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    return [str(MLSERVER_VENV / "bin" / "mlserver"), "start", str(folder)]


# --------------------------------------------------------------------------------------------
# Measuring one server
# --------------------------------------------------------------------------------------------


@dataclass
class Measure:
    """One server's figures in one round."""

    single: list[float]
    concurrent: list[float]
    concurrent_seconds: float
    batch: list[float]
    startup: float
    """Seconds from starting the process to its first answered prediction."""
    single_cpu: float
    """Server CPU seconds per request, one client (its worker processes included)."""
    concurrent_cpu: float
    """Server CPU seconds per request, eight clients."""

    @property
    def throughput(self) -> float:
        return len(self.concurrent) / self.concurrent_seconds


@dataclass(frozen=True)
class Started:
    """A running server: where it listens, its process, how long it took to answer."""

    port: int
    pid: int
    startup: float
    """Seconds from starting the process to the first answered prediction."""


def cpu_seconds(pid: int) -> float:
    """CPU seconds a server has used, its worker processes included (MLServer has one)."""
    import psutil

    total = 0.0
    process = psutil.Process(pid)
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = each.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def running(server: Server, root: Path, first: bytes) -> Iterator[Started]:
    """The server in its own process group, on a free port, until the block ends.

    It is started once it has answered a prediction for the body ``first``.
    """
    port = handler_bench.free_port()
    started = time.perf_counter()
    log = root / f"{server.name.split()[0]}.log"
    env = {**os.environ, "MLSERVER_LOGGING_LEVEL": "WARNING"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            server.command(port),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=root,
            env=env,
        )
    try:
        first_answer(process, http_request(port, server.path, first), port, log)
        yield Started(port, process.pid, time.perf_counter() - started)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def first_answer(process: subprocess.Popen[bytes], request: bytes, port: int, log: Path) -> None:
    """Ask for a prediction every POLL_SECONDS until one is answered (refused, 503: again)."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{log.name}: the server exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, RuntimeError):
            connection = Connection(port, request)
            try:
                connection.send()
                return
            finally:
                connection.sock.close()
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"{log.name}: no answer within {STARTUP_SECONDS} s")


def phase(root: Path, port: int, path: str, body: bytes, **spec: Any) -> dict[str, Any]:
    """One load phase in the load-generator process."""
    body_file = root / "body.json"
    body_file.write_bytes(body)
    out = root / "load.json"
    spec |= {"port": port, "path": path, "body": str(body_file)}
    subprocess.run(
        [sys.executable, __file__, "--load", json.dumps(spec), str(out)],
        check=True,
        cwd=root,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def measure(server: Server, setup: Setup, args: argparse.Namespace) -> Measure:
    one = server.body(setup.frame.head(1))
    batch = server.body(setup.frame.head(BATCH_ROWS))
    with running(server, setup.root, one) as started:
        port, pid = started.port, started.pid
        phase(setup.root, port, server.path, one, clients=1, count=50)  # warm up
        before = cpu_seconds(pid)
        single = phase(setup.root, port, server.path, one, clients=1, count=args.single)
        single_cpu = (cpu_seconds(pid) - before) / len(single["latencies"])
        before = cpu_seconds(pid)
        concurrent = phase(
            setup.root, port, server.path, one, clients=CLIENTS, seconds=args.seconds
        )
        concurrent_cpu = (cpu_seconds(pid) - before) / len(concurrent["latencies"])
        batched = phase(setup.root, port, server.path, batch, clients=1, count=args.batches)
    return Measure(
        single["latencies"],
        concurrent["latencies"],
        concurrent["seconds"],
        batched["latencies"],
        started.startup,
        single_cpu,
        concurrent_cpu,
    )


def check_same_labels(setup: Setup) -> None:
    """Every server predicts the same labels for the same 1,000 rows, or the bench stops."""
    answers = {}
    for server in setup.servers:
        with running(server, setup.root, server.body(setup.frame.head(1))) as started:
            body = server.body(setup.frame.head(BATCH_ROWS))
            answer = Connection(started.port, http_request(started.port, server.path, body)).send()
            answers[server.name] = [int(x) for x in server.labels(answer)]
    reference = answers[setup.servers[0].name]
    differing = [name for name, labels in answers.items() if labels != reference]
    if differing:
        raise SystemExit(f"these servers predict other labels than the floor: {differing}")


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------


def ms(values: Sequence[float], q: float) -> float:
    return 1000 * handler_bench.percentile(values, q)


def figures(m: Measure) -> dict[str, float]:
    return {
        "single_p50": ms(m.single, 50),
        "single_p99": ms(m.single, 99),
        "throughput": m.throughput,
        "load_p50": ms(m.concurrent, 50),
        "load_p99": ms(m.concurrent, 99),
        "batch_p50": ms(m.batch, 50),
        "startup": m.startup,
        "single_cpu": 1000 * m.single_cpu,
        "concurrent_cpu": 1000 * m.concurrent_cpu,
    }


def report(rounds: list[dict[str, Measure]]) -> list[str]:
    names = list(rounds[0])
    medians = {
        name: {
            key: statistics.median(figures(r[name])[key] for r in rounds)
            for key in figures(rounds[0][name])
        }
        for name in names
    }
    lines = [
        f"medians of {len(rounds)} rounds, ms unless said; one record per request unless said",
        f"{'server':<20} {'1 client p50':>12} {'p99':>7} {'8 clients req/s':>16} {'p50':>7} "
        f"{'p99':>7} {'1,000 rows p50':>15} {'start s':>8} {'CPU/req 1':>10} {'8':>6}",
    ]
    for name, f in medians.items():
        lines.append(
            f"{name:<20} {f['single_p50']:>12.2f} {f['single_p99']:>7.2f} "
            f"{f['throughput']:>16.1f} {f['load_p50']:>7.2f} {f['load_p99']:>7.2f} "
            f"{f['batch_p50']:>15.2f} {f['startup']:>8.2f} {f['single_cpu']:>10.2f} "
            f"{f['concurrent_cpu']:>6.2f}"
        )
    lines += ["", *verdicts(rounds), *peers(rounds)]
    return lines


def paired(rounds: list[dict[str, Measure]], top: Callable[[dict[str, Measure]], float]) -> float:
    return statistics.median(top(r) for r in rounds)


VERDICTS = (
    ("single_p50", "1-client p50", "<="),
    ("single_p99", "1-client p99", "<="),
    ("throughput", "requests/s, 8 clients", ">="),
    ("load_p99", "8-client p99", "<="),
    ("batch_p50", "1,000-row p50", "<="),
    ("single_cpu", "CPU/request, 1 client", ""),
    ("concurrent_cpu", "CPU/request, 8 clients", ""),
    ("startup", "start to first answer", ""),
)
"""Figures compared with the floor, and the sense of their target (none: shown only)."""


def verdicts(rounds: list[dict[str, Measure]], floor: str = "floor (FastAPI)") -> list[str]:
    """Ours / the floor per figure: the median of per-round ratios, their range, the target."""
    lines = [
        f"{'ours / floor':<24} {'median':>7} {'rounds':>13}   target",
    ]
    for key, label, sense in VERDICTS:
        ratios = [figures(r["ours"])[key] / figures(r[floor])[key] for r in rounds]
        value, spread = statistics.median(ratios), f"{min(ratios):.2f}-{max(ratios):.2f}"
        line = f"{label:<24} {value:7.2f} {spread:>13}"
        if sense:
            target = TARGETS[key]
            met = value >= target if sense == ">=" else value <= target
            line += f"   {sense} {target:<4} {'met' if met else 'MISSED'}"
        lines.append(line)
    return lines


def peers(rounds: list[dict[str, Measure]]) -> list[str]:
    """Ours against the best peer (MLServer's better codec) on each figure."""
    others = [n for n in rounds[0] if n.startswith("MLServer")]
    if not others:
        return []
    lines = ["", "ours / best MLServer (median of per-round ratios; >1 is better for ours)"]
    for key, label, higher in (
        ("throughput", "requests/s, 8 clients", True),
        ("single_p50", "1-client p50", False),
        ("load_p99", "8-client p99", False),
        ("batch_p50", "1,000-row p50", False),
        ("startup", "start to first answer", False),
    ):

        def per_round(r: dict[str, Measure], key: str = key, higher: bool = higher) -> float:
            values = [figures(r[n])[key] for n in others]
            ours = figures(r["ours"])[key]
            return ours / max(values) if higher else min(values) / ours

        lines.append(f"  {label:<24} {paired(rounds, per_round):6.2f}")
    return lines


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def load_average() -> str:
    """The 1, 5 and 15-minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0, help="8-client phase length")
    parser.add_argument("--single", type=int, default=400, help="1-client requests")
    parser.add_argument("--batches", type=int, default=40, help="1,000-row requests")
    parser.add_argument("--rows", type=int, default=10_000, help="training rows")
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--trees", type=int, default=40)
    parser.add_argument("--no-mlserver", dest="mlserver", action="store_false")
    parser.add_argument("--no-unbatched", dest="unbatched", action="store_false")
    parser.add_argument("--mlserver-pandas", action="store_true", help="also its pandas codec")
    parser.add_argument("--quick", action="store_true", help="1 round, short phases")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.single, args.batches = 1, 3.0, 100, 10
    return args


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--floor"]:
        return floor_server(argv[1], int(argv[2]))
    if argv[:1] == ["--load"]:
        Path(argv[2]).write_text(json.dumps(load_main(json.loads(argv[1]))))
        return 0
    args = parse_args(argv)
    load_before = load_average()
    root = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    try:
        progress("training and publishing the model")
        setup = prepare(root, args)
        progress(f"servers: {', '.join(s.name for s in setup.servers)}; checking their labels")
        check_same_labels(setup)
        rounds = []
        for index in range(args.rounds):
            order = setup.servers if index % 2 == 0 else setup.servers[::-1]
            measured = {}
            for server in order:
                progress(f"round {index + 1}: {server.name}")
                measured[server.name] = measure(server, setup, args)
            rounds.append({s.name: measured[s.name] for s in setup.servers})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(
        f"model: StandardScaler + RandomForestClassifier({args.trees} trees), {args.rows} x "
        f"{args.features} rows; {CLIENTS} clients for {args.seconds:g} s; load average "
        f"{load_before} before, {load_average()} after"
    )
    print("\n".join(report(rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
