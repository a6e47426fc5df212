"""Gate benchmark: what deciding on a candidate adds to one training run.

Two definitions of the same model (a scaler and a 60-tree random forest on generated data),
one with a gate whose rules include one relative to the live version, one without. Each
training run trains every step, then (gated) runs the gate task, which loads the live version,
scores it on the run's own test rows and stages the candidate with the decision, then publishes;
the ungated run stages and publishes in its publish task. Both run the same task functions the
DAG's operators call (no scheduler: its overhead is the same on both sides and would only dilute
the figure), in one process, alternating, on the same local store. The first run of each model
publishes the version the relative rule compares with and is not timed.

Prints the median wall time of a whole training run on both sides, their ratio, and the gate
task's own time with the part spent scoring the live version (the manifest's gate record).

Usage: ``python bench/gate.py [--rows 50000] [--features 20] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

MODEL_YAML = """\
apiVersion: model-steps/v1
kind: Model
name: {name}
assets: {{root: "{assets}"}}
{gate}steps:
  - id: scale
    has_assets: true
    assets_identifier: scaler.joblib
    parameters:
      package: sklearn.preprocessing
      class: StandardScaler
      input: {{train: {{url: "{data}"}}}}
      training: {{target: label, split: {{test_size: 0.25, seed: 42, stratify: true}}}}
  - id: forest
    has_assets: true
    assets_identifier: forest.joblib
    parameters:
      package: sklearn.ensemble
      class: RandomForestClassifier
      init: {{n_estimators: 60, max_depth: 12, random_state: 0, n_jobs: 1}}
      metrics: [accuracy, f1, roc_auc]
"""
GATE = """\
gate:
  rules: [accuracy >= 0.6, f1 >= live - 0.05, roc_auc >= live - 0.05]
"""


def write_data(folder: Path, rows: int, features: int) -> Path:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=features, n_informative=features // 2, random_state=1
    )
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)]).assign(label=y)
    path = folder / "train.parquet"
    frame.to_parquet(path, index=False)
    return path


def load(folder: Path, name: str, data: Path, gated: bool) -> Any:
    from model_steps.definition.loader import load_and_validate

    path = folder / f"{name}.yaml"
    assets = folder / "assets"
    path.write_text(
        MODEL_YAML.format(name=name, assets=assets, data=data, gate=GATE if gated else "")
    )
    (model,) = load_and_validate([path], {}).models
    return model.spec


def train_run(spec: Any, number: int) -> float:
    """One training run as the train DAG's tasks run it; returns its wall seconds."""
    from model_steps.runtime.context import RunInfo, environment
    from model_steps.runtime.gate import gate
    from model_steps.runtime.publish import publish
    from model_steps.runtime.rendered import Rendered
    from model_steps.runtime.train import train_step
    from model_steps.settings import load_settings

    source = spec.steps[0].parameters.input.train
    assert source is not None
    data = {"MODEL_STEPS_ALLOWED_DATA": str(Path(source.url).parent)}
    env = environment(spec, load_settings(data), {})
    run = RunInfo(f"{spec.name}__train", f"bench__{number}")
    start = time.perf_counter()
    for step in spec.steps:
        train_step(spec, step.id, run, env, Rendered.templates(step, "train"))
    if spec.gate.rules:
        gate(spec, run, env)
    publish(spec, run, env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from model_steps.runtime.context import environment
    from model_steps.settings import load_settings

    with tempfile.TemporaryDirectory(prefix="model-steps-bench-gate-") as temporary:
        folder = Path(temporary)
        data = write_data(folder, args.rows, args.features)
        plain, gated = load(folder, "plain", data, False), load(folder, "gated", data, True)
        train_run(plain, 0)  # warm imports, and a live version for the relative rules
        train_run(gated, 0)
        times: dict[str, list[float]] = {"plain": [], "gated": []}
        for number in range(1, args.repeat + 1):
            times["plain"].append(train_run(plain, number))
            times["gated"].append(train_run(gated, number))
        store = environment(gated, load_settings({}), {}).store
        records = [store.manifest(v).gate for v in store.versions()[1:]]
        scoring = [r.seconds for r in records if r is not None]

    medians = {side: statistics.median(values) for side, values in times.items()}
    print(f"{args.rows} rows x {args.features} features, {args.repeat} runs per side")
    print(f"training run without a gate: {medians['plain']:.3f} s (median)")
    print(f"training run with the gate:  {medians['gated']:.3f} s (median)")
    print(f"gate's extra cost: {medians['gated'] - medians['plain']:.3f} s per run")
    print(f"ratio gated/ungated: {medians['gated'] / medians['plain']:.3f}")
    print(f"of which scoring the live version on the test rows: {statistics.median(scoring):.3f} s")


if __name__ == "__main__":
    main()
