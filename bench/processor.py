"""A new model YAML in a large DAGs folder: how soon does a running DAG processor list its DAGs?

A real ``airflow dag-processor`` (Airflow's default settings: two parsing processes,
``min_file_process_interval`` 30 s, ``refresh_interval`` 300 s, ``dagbag_import_timeout`` 30 s;
ours too: the parse watcher looks every 5 s, ``--parse-watch-interval 0`` turns it off) parses
a folder of N generated models (bench/parse.py's shape, 2 DAGs each) on a fresh SQLite metadata
DB. The parse cache is warmed first by two untimed parses (the first writes the shard files, the
second parses each of them), as a running deployment has it. The clock then runs from the
processor's start until every model's DAGs are listed in the metadata DB (the ``dag`` table,
not stale), and from writing one more YAML until its two DAGs are listed, ``--new`` times in a
row. Each says how it was listed: after the watcher asked for its DAG file (the processor's log
says so), or by Airflow's own round or listing. The processor runs in its own process group and
is killed at the end, whatever happens; every wait is bounded.

Usage: ``python bench/processor.py [--models 10000] [--new 3] [--parse-watch-interval S]
[--list-timeout 1500] [--new-timeout 300]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parse import model_name, model_yaml, write_models

TARGET_NEW_S = 60.0
WARM = """\
import os, sys, time
from pathlib import Path
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
folder = Path(sys.argv[1])
start = time.perf_counter()
for _ in range(2):  # the loader writes the shard files; then every file fills its cache
    bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
print(f"{time.perf_counter() - start:.1f} s, {len(bag.dags)} DAGs, {len(bag.import_errors)} errors")
"""


def environment(home: Path, folder: Path) -> dict[str, str]:
    """Airflow's defaults, except where the DB, the DAGs and the model data live."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "_AIRFLOW"))}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "MODEL_STEPS_ASSETS_ROOT": str(home / "assets"),
            "MODEL_STEPS_DATA_ROOT": str(home / "data"),
        }
    )
    return env


def listed(db: Path, dag_ids: Sequence[str] | None = None) -> int:
    """DAGs the metadata DB lists as present (all of them, or of ``dag_ids``)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            if dag_ids is None:
                row = connection.execute("SELECT count(*) FROM dag WHERE NOT is_stale").fetchone()
            else:
                marks = ",".join("?" * len(dag_ids))
                row = connection.execute(
                    f"SELECT count(*) FROM dag WHERE NOT is_stale AND dag_id IN ({marks})",
                    list(dag_ids),
                ).fetchone()
    except sqlite3.Error:
        return 0
    return int(row[0])


def wait(db: Path, expected: int, timeout: float, dag_ids: Sequence[str] | None = None) -> float:
    """Seconds until ``expected`` DAGs are listed; the timeout if they never are."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if listed(db, dag_ids) >= expected:
            return time.monotonic() - start
        time.sleep(0.5)
    return timeout


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the processor and its parsing children (its own process group only)."""
    for sig, grace in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def how_listed(log: Path, seen: int, dag_file: str) -> str:
    """Whether the watcher asked for ``dag_file`` in the log written after byte ``seen``."""
    with log.open("rb") as text:
        text.seek(seen)
        new = text.read().decode(errors="replace")
    asked = [line for line in new.splitlines() if "asked Airflow to parse" in line]
    if any(dag_file in line for line in asked):
        return f"the watcher asked for {dag_file}"
    return "no request for it: Airflow's own round or listing"


def new_yamls(
    folder: Path, db: Path, log: Path, models: int, count: int, timeout: float
) -> list[float]:
    """Write ``count`` new YAMLs one after the other; the seconds until each one's DAGs list."""
    from model_steps.airflow.shards import dag_file_name, live_shards
    from model_steps.definition.shards import shard_of
    from model_steps.settings import load_settings

    settings = load_settings({**os.environ, **environment(folder.parent / "home", folder)})
    seconds = []
    for index in range(models, models + count):
        name = model_name(index)
        shards = live_shards(folder, settings, index + 1)
        dag_file = dag_file_name(shard_of(f"{name}.yaml", shards))
        new = [f"{name}__train", f"{name}__infer"]
        seen = log.stat().st_size
        (folder / f"{name}.yaml").write_text(model_yaml(index))
        took = wait(db, len(new), timeout, new)
        found = listed(db, new)
        verdict = "met" if found == len(new) and took <= TARGET_NEW_S else "MISSED"
        print(
            f"new YAML -> its DAGs listed: {took:.1f} s ({found} of {len(new)} DAGs; "
            f"target <= {TARGET_NEW_S:.0f} s: {verdict}); {how_listed(log, seen, dag_file)}",
            flush=True,
        )
        seconds.append(took)
    return seconds


def run(
    models: int, new: int, watch: float | None, timeouts: tuple[float, float], work: Path
) -> int:
    list_timeout, new_timeout = timeouts
    folder, home = work / "dags", work / "home"
    home.mkdir()
    write_models(folder, models)
    env = environment(home, folder)
    if watch is not None:
        env["AIRFLOW__MODEL_STEPS__PARSE_WATCH_INTERVAL"] = str(watch)
    airflow = str(Path(sys.executable).with_name("airflow"))
    started = time.perf_counter()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    print(f"metadata DB migrated in {time.perf_counter() - started:.0f} s", flush=True)
    warm_env = {**env, "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "1800"}
    started = time.perf_counter()
    warmed = subprocess.run(
        [sys.executable, "-c", WARM, str(folder)],
        env=warm_env,
        check=True,
        capture_output=True,
        text=True,
    )
    print(f"warm-up parse (fills the parse cache): {warmed.stdout.strip()}", flush=True)
    shards = sorted((folder / "model_steps_shards").glob("shard_*.py"))
    print(f"DAG files: the loader and {len(shards)} shards", flush=True)
    log = (work / "dag-processor.log").open("wb")
    db = home / "airflow.db"
    process = subprocess.Popen(
        [airflow, "dag-processor"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        all_listed = wait(db, 2 * models, list_timeout)
        count = listed(db)
        print(
            f"every model listed after the processor started: {all_listed:.0f} s "
            f"({count} of {2 * models} DAGs)",
            flush=True,
        )
        times = new_yamls(folder, db, work / "dag-processor.log", models, new, new_timeout)
        print(
            f"new YAMLs listed in {', '.join(f'{t:.1f}' for t in times)} s "
            f"(median {statistics.median(times):.1f} s; parse watcher interval "
            f"{'default (5 s)' if watch is None else f'{watch:g} s'})",
            flush=True,
        )
    finally:
        stop(process)
        log.close()
    records = sorted((home / "model-steps" / "parse-cache" / "parse-times").glob("*.json"))
    times = [json.loads(r.read_text()) for r in records]
    if times:
        slowest = max(times, key=lambda t: t["seconds"])
        total = sum(t["seconds"] for t in times)
        print(
            f"last parse of each of {len(times)} DAG files (wall, as the loader recorded it): "
            f"slowest {slowest['file']} {slowest['seconds']:.2f} s, sum {total:.1f} s",
            flush=True,
        )
    tail = (work / "dag-processor.log").read_text(errors="replace").splitlines()
    timeouts = [line for line in tail if "timed out" in line.lower() or "killing" in line.lower()]
    print(f"processor log: {len(tail)} lines, {len(timeouts)} timeout/kill lines", flush=True)
    for line in timeouts[:5]:
        print("  " + line[:200])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--new", type=int, default=3, help="new YAMLs, one after another")
    parser.add_argument("--parse-watch-interval", type=float, default=None)
    parser.add_argument("--list-timeout", type=float, default=1500)
    parser.add_argument("--new-timeout", type=float, default=300)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="model-steps-processor-"))
    try:
        timeouts = (args.list_timeout, args.new_timeout)
        return run(args.models, args.new, args.parse_watch_interval, timeouts, work)
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
