"""What one look of the DAG processor's parse watcher costs in a folder of N model YAMLs.

The watcher (``model_steps.airflow.parse_watch``) runs in the DAG processor and looks every
``[model_steps] parse_watch_interval`` seconds (5 by default): it stats every definition file
and, when one changed, works out its DAG file. Timed here without the DB (a look that asks
for something writes one row per DAG file, a few ms on any DB), against a baseline measured in
the same run: Airflow's own listing of the same folder (``list_py_file_paths``), which the DAG
processor does at every ``refresh_interval``. Rounds alternate the three; medians of CPU time.

Usage: ``python bench/parse_watch.py [--models 10000] [--rounds 15]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from parse import write_models

INTERVAL_S = 5.0


def cpu_ms(action: Callable[[], object]) -> float:
    """CPU time of one call, in ms."""
    started = time.process_time()
    action()
    return 1000 * (time.process_time() - started)


def run(models: int, rounds: int, work: Path) -> None:
    folder = work / "dags"
    write_models(folder, models)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(work / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "0",  # every shard file counts as listed
            "MODEL_STEPS_PARSE_CACHE": str(work / "cache"),
        }
    )
    from airflow.utils.file import list_py_file_paths

    from model_steps.airflow.parse_watch import FolderWatch
    from model_steps.airflow.shards import plan_shard
    from model_steps.settings import load_settings

    settings = load_settings()
    plan_shard(folder, settings, 0)  # the loader writes its shard files
    watch = FolderWatch("dags-folder", folder)
    watch.look(settings)  # the baseline look
    edited = sorted(folder.glob("*.yaml"))[0]
    timings: dict[str, list[float]] = {"listing": [], "unchanged": [], "one change": []}
    for round_ in range(rounds):
        timings["listing"].append(cpu_ms(lambda: list_py_file_paths(folder)))
        timings["unchanged"].append(cpu_ms(lambda: watch.look(settings)))
        edited.write_text(edited.read_text() + f"# round {round_}\n")
        timings["one change"].append(cpu_ms(lambda: watch.look(settings)))
        watch.asked(settings)
    listing = statistics.median(timings["listing"])
    print(f"{models} definition files, {rounds} rounds, load {os.getloadavg()[0]:.1f}")
    for name, values in timings.items():
        median = statistics.median(values)
        core = 100 * median / 1000 / INTERVAL_S
        share = (
            "Airflow does it once per refresh_interval"
            if name == "listing"
            else f"{core:.2f}% of a core at a look per {INTERVAL_S:.0f} s"
        )
        print(
            f"  {name:>10}: {median:6.1f} ms CPU (median; {min(values):.1f}-{max(values):.1f}), "
            f"{median / listing:.2f}x Airflow's listing, {share}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="model-steps-parse-watch-"))
    try:
        run(args.models, args.rounds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
