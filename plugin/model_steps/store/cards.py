"""Model cards: the ``MODEL_CARD.md`` written with every version, for the reviewer who signs.

The card follows the model card template our users sign (Model Details, Uses, Task Details,
Bias/Risks/Limitations, Training Details, Evaluation, Environmental Impact, Technical
Specifications, How to Get Started). What the system knows comes from the definition and the
version's manifest (steps and their rendered hyperparameters, data and row counts, classes,
metrics and the gate's comparison, timings, sizes, libraries, hardware); what only a person
knows comes from the definition's ``card:`` block and shows as "not provided" when absent, so a
reviewer sees the gaps. Output is deterministic for a given definition and manifest.

The comment history comes from :mod:`model_steps.definition.summary`, which the DAG
documentation (:mod:`model_steps.airflow.docs`) shares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from model_steps.definition.schema import ModelSpec, Step
from model_steps.definition.summary import history
from model_steps.store.manifest import GateRecord, Manifest, StepRecord, Timings

__all__ = ["NOT_PROVIDED", "SECTIONS", "byte_size", "model_card"]

NOT_PROVIDED = "_not provided_"
"""How a card shows a fact only a person can give, when nobody gave it."""
SECTIONS = (
    "Model Details",
    "Uses",
    "Task Details",
    "Bias, Risks, and Limitations",
    "Training Details",
    "Evaluation",
    "Environmental Impact",
    "Technical Specifications",
    "How to Get Started with the Model",
)
"""The template's top-level sections, in its order."""


def model_card(spec: ModelSpec, manifest: Manifest) -> str:
    """``MODEL_CARD.md`` of a version: every section of the template, filled from what we know."""
    parts = [
        f"# {spec.name} — version {manifest.version}",
        f"*{_summary(spec)}*",
        "# Table of Contents\n\n"
        + "\n".join(f"- [{title}](#{_anchor(title)})" for title in SECTIONS),
        _details(spec, manifest),
        _uses(spec),
        _task(spec, manifest),
        _risks(spec),
        _training(spec, manifest),
        _evaluation(spec, manifest),
        _environment(spec, manifest),
        _technical(spec, manifest),
        _get_started(spec, manifest),
        history(spec),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


# -- helpers ----------------------------------------------------------------------------------


def _summary(spec: ModelSpec) -> str:
    text = spec.description.strip()
    return text.split("\n\n", 1)[0].replace("\n", " ") if text else "No description given."


def _anchor(title: str) -> str:
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")


def _given(value: Any) -> str:
    """A person's text, or the marker that shows the gap."""
    return str(value).strip() if value is not None and str(value).strip() else NOT_PROVIDED


def _bullets(facts: Mapping[str, Any]) -> str:
    return "\n".join(f"- **{key}:** {value}" for key, value in facts.items())


def _block(title: str, text: Any, level: int = 2) -> str:
    return f"{'#' * level} {title}\n\n{_given(text)}"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def byte_size(size: int) -> str:
    """A size for people: ``512 B``, ``3.4 KiB``, ``1.2 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


def _runs(step: Step) -> str:
    params = step.parameters
    return params.callable or f"{params.package}.{params.class_}"


def _trained_steps(spec: ModelSpec, manifest: Manifest) -> list[tuple[Step, StepRecord | None]]:
    """Each step as this version trained it (rendered init), beside its record."""
    records = {record.step_id: record for record in manifest.steps}
    steps = []
    for step in spec.steps:
        record = records.get(step.id)
        trained = Step.model_validate(record.definition) if record and record.definition else step
        steps.append((trained, record))
    return steps


def _first(manifest: Manifest) -> StepRecord | None:
    return manifest.steps[0] if manifest.steps else None


# -- sections ---------------------------------------------------------------------------------


def _details(spec: ModelSpec, manifest: Manifest) -> str:
    card = spec.card
    pipeline = " → ".join(_runs(step) for step in spec.steps)
    description = _bullets(
        {
            "Developed by": _given(card.developed_by),
            "Funded by": _given(card.funded_by),
            "Shared by": _given(card.shared_by),
            "Model type": card.model_type or f"pipeline of {len(spec.steps)} step(s): {pipeline}",
            "License": _given(spec.license),
            "Version": f"{manifest.version} (definition version {spec.version or '—'}, spec "
            f"hash `{manifest.spec_hash[:16]}`)",
            "Trained": f"{manifest.created_at} by run `{manifest.run_id}` of `{manifest.dag_id}`",
            "Deployment status": spec.status,
            "Owner": spec.owner,
            "Domain": spec.domain or "—",
            "Tags": ", ".join(spec.tags) or "—",
        }
    )
    sources = _bullets(
        {
            "Repository": _given(card.repository),
            "Paper": _given(card.paper),
            "Demo": _given(card.demo),
        }
    )
    return (
        f"# Model Details\n\n## Model Description\n\n{spec.description.strip() or _summary(spec)}"
        f"\n\n{description}\n\n## Model Sources\n\n{sources}"
    )


def _uses(spec: ModelSpec) -> str:
    card = spec.card
    return "\n\n".join(
        [
            "# Uses",
            _block("Direct Use", card.direct_use or spec.intended_use),
            _block("Downstream Use", card.downstream_use),
            _block("Out-of-Scope Use", card.out_of_scope_use),
        ]
    )


def _task(spec: ModelSpec, manifest: Manifest) -> str:
    first = _first(manifest)
    last = spec.steps[-1].parameters
    kind = "classification" if manifest.class_labels else "regression or scoring"
    facts = {
        "Task type": spec.card.task_type or kind,
        "Input": _columns(first),
        "Output": f"`{last.methods.predict}` of the last step"
        + (
            f", classes {', '.join(map(repr, manifest.class_labels))}"
            if manifest.class_labels
            else ""
        ),
    }
    return "# Task Details\n\n" + _bullets(facts)


def _columns(record: StepRecord | None) -> str:
    if record is None or not record.columns_in:
        return "—"
    return ", ".join(f"`{c}` ({record.dtypes_in.get(c, '?')})" for c in record.columns_in)


def _risks(spec: ModelSpec) -> str:
    card = spec.card
    return "\n\n".join(
        [
            "# Bias, Risks, and Limitations",
            _block("Known Biases", card.known_biases),
            _block("Risks", card.risks),
            _block("Limitations", spec.limitations),
            _block("Recommendations", card.recommendations),
        ]
    )


def _training(spec: ModelSpec, manifest: Manifest) -> str:
    steps = _trained_steps(spec, manifest)
    return "\n\n".join(
        [
            "# Training Details",
            "## Training Data\n\n" + _training_data(spec, manifest),
            "## Training Procedure",
            "### Preprocessing\n\n" + _preprocessing(spec, steps),
            "### Training Hyperparameters\n\n" + _hyperparameters(steps, manifest),
            "### Speeds, Sizes, Times\n\n" + _speeds(manifest),
        ]
    )


def _training_data(spec: ModelSpec, manifest: Manifest) -> str:
    first = _first(manifest)
    rows = first.rows if first else {}
    split = next((s.parameters.training.split for s in spec.steps if s.parameters.training), None)
    splitting = (
        f"scikit-learn's `train_test_split` with test_size={split.test_size}, "
        f"random_state={split.seed}, stratify={'the target' if split.stratify else 'no'}"
        if split
        else "no test split: every row trains"
    )
    facts = {
        "Source": _given(spec.card.training_data or spec.metadata.get("dataset")),
        "Data": ", ".join(f"`{url}`" for url in (first.inputs.values() if first else [])) or "—",
        "Size": ", ".join(f"{count} rows ({split_name})" for split_name, count in rows.items())
        or "—",
        "Classes": ", ".join(map(repr, manifest.class_labels)) or "—",
        "Ground truth": _given(spec.card.ground_truth),
        "Data splits": splitting,
        "Published model fitted on": _fitted_on(manifest),
    }
    return _bullets(facts)


def _fitted_on(manifest: Manifest) -> str:
    """Which rows the published steps learnt from, and where the test metrics come from."""
    last = manifest.steps[-1] if manifest.steps else None
    if last is None:
        return "—"
    if last.fitted_on == "all":
        return (
            f"all {last.rows.get('all', '?')} rows, refitted after the test metrics were "
            "computed on the same steps fitted on the training part alone"
        )
    if "test" in last.rows:
        return (
            f"the training part ({last.rows.get('train', '?')} rows); the test part only scored it"
        )
    return f"every row ({last.rows.get('train', '?')}): nothing was held out"


def _preprocessing(spec: ModelSpec, steps: Sequence[tuple[Step, StepRecord | None]]) -> str:
    listed = [f"{i}. `{step.id}`: {_runs(step)}" for i, (step, _) in enumerate(steps[:-1], 1)]
    text = "\n".join(listed) or "No preprocessing step: the last step reads the data as it is."
    return f"{text}\n\n{_given(spec.card.preprocessing)}" if spec.card.preprocessing else text


def _hyperparameters(steps: Sequence[tuple[Step, StepRecord | None]], manifest: Manifest) -> str:
    rows = []
    for step, _ in steps:
        init = step.parameters.init
        shown = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in sorted(init.items()))
        rows.append((f"`{step.id}`", f"`{_runs(step)}`", shown or "defaults"))
    table = _table(("step", "runs", "hyperparameters (as rendered for this run)"), rows)
    params = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in manifest.parameters.items())
    return f"{table}\n\nRun parameters: {params or 'none'}."


def _speeds(manifest: Manifest) -> str:
    timings = manifest.timings
    sizes = [(r.step_id, r.asset.size) for r in manifest.steps if r.asset is not None]
    facts = {
        "Training time": f"{_number(timings.train_wall_seconds)} s wall, "
        f"{_number(timings.train_cpu_seconds)} s CPU"
        if timings
        else "—",
        "Fit time per step": ", ".join(
            f"`{r.step_id}` {r.fit_seconds:.3g} s" for r in manifest.steps
        )
        or "—",
        "Model size": ", ".join(f"`{step}` {byte_size(size)}" for step, size in sizes)
        or "no assets",
        "Load time": f"{_number(timings.load_seconds)} s"
        if timings and timings.load_seconds is not None
        else "—",
        "Inference time": _per_record(timings),
        "Peak memory": _peak_memory(manifest),
    }
    return _bullets(facts)


def _per_record(timings: Timings | None) -> str:
    if timings is None or timings.predict_seconds_per_record is None:
        return "—"
    return f"{_number(timings.predict_seconds_per_record * 1000)} ms per record at warm-up"


def _peak_memory(manifest: Manifest) -> str:
    return byte_size(max((r.peak_memory_bytes for r in manifest.steps), default=0))


def _evaluation(spec: ModelSpec, manifest: Manifest) -> str:
    card = spec.card
    test_rows = next((r.rows.get("test") for r in manifest.steps if "test" in r.rows), None)
    names = sorted({name for values in manifest.metrics.values() for name in values})
    return "\n\n".join(
        [
            "# Evaluation",
            "## Testing Data, Factors & Metrics",
            "### Testing Data\n\n"
            + _bullets(
                {
                    "Source": _given(card.testing_data),
                    "Size": f"{test_rows} rows held out" if test_rows else "no held-out rows",
                }
            ),
            _block("Factors", card.factors, level=3),
            "### Metrics\n\n" + (", ".join(f"`{n}`" for n in names) or "none computed"),
            "## Results\n\n" + _results(manifest, names),
            "### Gate\n\n" + _gate(manifest.gate),
            _block("Societal Impact Assessment", card.societal_impact),
        ]
    )


def _results(manifest: Manifest, names: Sequence[str]) -> str:
    if not names:
        return "No metrics were computed."
    splits = sorted(manifest.metrics)
    rows = [(name, *(_number(manifest.metrics[s].get(name)) for s in splits)) for name in names]
    return _table(("metric", *splits), rows)


def _gate(gate: GateRecord | None) -> str:
    if gate is None:
        return "The model has no gate: every successful training run is published."
    head = f"**{gate.outcome}**: {gate.reason}"
    if gate.live_version is not None:
        head += f" (compared with live version {gate.live_version} on this run's test split)"
    if not gate.rules:
        return head
    rows = [
        (
            f"`{r.rule}`",
            _number(r.candidate),
            _number(r.live),
            _number(r.threshold),
            {True: "passed", False: "failed", None: "not applicable"}[r.passed],
        )
        for r in gate.rules
    ]
    return head + "\n\n" + _table(("rule", "candidate", "live", "threshold", "result"), rows)


def _environment(spec: ModelSpec, manifest: Manifest) -> str:
    card = spec.card
    cpu = manifest.timings.train_cpu_seconds if manifest.timings else None
    facts = {
        "Hardware Type": manifest.hardware.get("cpu", "—")
        + (f", {manifest.hardware['cores']} cores" if "cores" in manifest.hardware else ""),
        "Hours used": f"{cpu / 3600:.4f} CPU hours" if cpu is not None else "—",
        "Cloud Provider": _given(card.cloud_provider),
        "Compute Region": _given(card.compute_region),
        "Carbon Emitted": _given(card.carbon_emitted),
    }
    return "# Environmental Impact\n\n" + _bullets(facts)


def _technical(spec: ModelSpec, manifest: Manifest) -> str:
    rows = []
    for index, (step, record) in enumerate(_trained_steps(spec, manifest), 1):
        method = (
            step.parameters.methods.predict
            if index == len(spec.steps)
            else step.parameters.methods.transform
        )
        asset = record.asset if record else None
        rows.append(
            (
                index,
                f"`{step.id}`",
                f"`{_runs(step)}`",
                f"`{method}`",
                f"{asset.url} (`{asset.sha256[:16]}…`)" if asset else "—",
            )
        )
    architecture = _table(("#", "step", "runs", "method", "asset"), rows)
    software = ", ".join(
        f"{name} {version}" for name, version in sorted(manifest.environment.items())
    )
    hardware = _bullets(
        {
            "Training": f"peak memory {_peak_memory(manifest)}",
            "Inference": "one CPU core serves it; memory for two versions during a reload",
            "Storage": byte_size(sum(r.asset.size for r in manifest.steps if r.asset)),
        }
    )
    return "\n\n".join(
        [
            "# Technical Specifications",
            "## Model Architecture and Objective\n\n" + architecture,
            "Input specification: " + _columns(_first(manifest)) + ".",
            "## Compute Infrastructure",
            "### Hardware Requirements\n\n" + hardware,
            "### Software Dependencies\n\n" + (software or "—"),
        ]
    )


def _get_started(spec: ModelSpec, manifest: Manifest) -> str:
    sample = manifest.sample_records[:1]
    record = json.dumps(sample[0] if sample else {}, default=str)
    return (
        "# How to Get Started with the Model\n\n"
        "In a serving process (no Airflow needed):\n\n"
        "```python\n"
        "from model_steps.serving import ModelHandler\n\n"
        f'handler = ModelHandler.from_definition("dags/{spec.name}.yaml").start()\n'
        f"handler.predict({record})\n"
        "```\n\n"
        "Over HTTP, with `model-steps serve " + spec.name + "`:\n\n"
        "```bash\n"
        "curl -s localhost:8000/predict -H 'content-type: application/json' \\\n"
        f"     -d '[{record}]'\n"
        "```"
    )
