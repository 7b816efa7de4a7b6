"""Batch files: many experiments in one YAML, each run into its own resumable folder.

    name: my-batch                      # output folder: outputs/<name>/ unless --out
    experiments:
      - name: cheese-100                # folder under the batch folder
        command: apply                  # compute-vector | apply | compose | sweep-coeff | transfer | layer-sweep
        spec: cheese-vector.yaml        # a path (relative to this file) or an inline mapping
        set: {coeff: 1}                 # optional: top-level keys that override the spec's
    grid:                               # optional: every combination of the axes becomes an experiment
      command: apply
      spec: {seeds: [0, 1, 2], vector: {kind: cheese}}
      axes: {coeff: [-1, 1], layer: [block2.res1.resadd_out, block3.res1.resadd_out], vector.kind: [cheese]}

Every experiment is validated before any runs. Each writes a run folder with a manifest, so re-running the
batch skips the cells that finished (unless --force).
"""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.claims import Claim, evaluate, markdown, parse_claims
from steer.errors import SteerError, excerpt, shown_key
from steer.io import atomic_write_bytes, atomic_write_json, load_yaml, prepare_out_dir
from steer.report.html import write_summary_html
from steer.run.executors import check_executor, started
from steer.run.runner import run_study
from steer.run.session import Session
from steer.run.specs import Spec, is_plain_name
from steer.studies import STUDIES

_NAME = re.compile(r"[A-Za-z0-9._-]+")
MAX_EXPERIMENTS = 10_000  # in one batch, its grid's combinations included


@dataclass(frozen=True)
class Experiment:
    name: str
    command: str
    spec: Spec


def _load_yaml(path: Path, what: str) -> Any:
    return load_yaml(path, what)  # bounded: size, aliases, nesting, encoding (steer/io.py)


def _set_path(data: dict[str, Any], dotted: str, value: Any, where: str) -> None:
    keys = dotted.split(".")
    node = data
    for key in keys[:-1]:
        if not isinstance(node.get(key), dict):
            raise SteerError(
                f"{where}: {excerpt(dotted)} goes through {excerpt(key)}, which is not a mapping in the spec."
            )
        node = node[key]
    node[keys[-1]] = value


def _experiment(item: Any, where: str, base: Path) -> Experiment:
    if not isinstance(item, dict):
        raise SteerError(f"{where}: expected a mapping with name, command and spec, got {excerpt(item)}.")
    unknown = [k for k in item if k not in ("name", "command", "spec", "set")]
    if unknown:
        raise SteerError(f"{where}.{shown_key(unknown[0])}: unknown key. Valid keys: name, command, spec, set.")
    name, command = item.get("name"), item.get("command")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > 255:
        raise SteerError(
            f"{where}.name: {excerpt(name)} must be a folder name of letters, digits, '.', '_' or '-' (at most 255)."
        )
    if command not in STUDIES:
        raise SteerError(f"{where}.command: {excerpt(command)} is not one of {', '.join(STUDIES)}.")
    raw = item.get("spec")
    spec_path: Path | None = None
    if isinstance(raw, str):
        spec_path = (base / raw) if not Path(raw).is_absolute() else Path(raw)
        raw = _load_yaml(spec_path, f"{where}.spec")
    if not isinstance(raw, dict):
        raise SteerError(f"{where}.spec: expected a spec file name or an inline spec mapping, got {excerpt(raw)}.")
    data = copy.deepcopy(raw)
    overrides = item.get("set") or {}
    if not isinstance(overrides, dict):
        raise SteerError(f"{where}.set: expected a mapping of spec keys to values, got {excerpt(overrides)}.")
    for key, value in overrides.items():
        _set_path(data, str(key), value, f"{where}.set")
    data["name"] = name
    try:
        spec = STUDIES[command].parse(data, spec_path)
    except SteerError as e:
        raise SteerError(f"{where} ({name}): {e}") from None
    return Experiment(name, command, spec)


def _grid(grid: Any, base: Path) -> list[Experiment]:
    if not isinstance(grid, dict) or not isinstance(grid.get("axes"), dict) or not grid["axes"]:
        raise SteerError("grid: expected {command, spec, axes: {key: [values, ...], ...}}.")
    axes = grid["axes"]
    for key, values in axes.items():
        if not isinstance(key, str) or not key:
            raise SteerError(f"grid.axes: {shown_key(key)} is not a spec key; name one such as coeff or vector.kind.")
        if not isinstance(values, list) or not values:
            raise SteerError(f"grid.axes.{shown_key(key)}: expected a non-empty list of values, got {excerpt(values)}.")
    # Counted before anything is expanded: 1000 x 1000 values would take hours to plan.
    count = math.prod(len(values) for values in axes.values())
    if count > MAX_EXPERIMENTS:
        sizes = " x ".join(str(len(values)) for values in axes.values())
        raise SteerError(
            f"grid: its axes make {count} experiments ({sizes}), more than the {MAX_EXPERIMENTS} allowed in one "
            "batch; use fewer values per axis, or split the grid over several batch files."
        )
    out = []
    for combo in itertools.product(*axes.values()):
        settings = dict(zip(axes, combo, strict=True))
        label = "_".join(f"{k.split('.')[-1]}={v}" for k, v in settings.items())
        name = re.sub(r"[^A-Za-z0-9._=-]", "-", label).replace("=", "-")
        item = {"name": name, "command": grid.get("command"), "spec": grid.get("spec"), "set": settings}
        shown = label if len(label) <= 120 and label.isprintable() else excerpt(label, 120)
        out.append(_experiment(item, f"grid[{shown}]", base))
    return out


@dataclass(frozen=True)
class Batch:
    name: str
    experiments: tuple[Experiment, ...]
    claims: tuple[Claim, ...] = ()


def load_batch(path: str | Path) -> Batch:
    path = Path(path)
    data = _load_yaml(path, "batch")
    if not isinstance(data, dict):
        raise SteerError(f"batch: {excerpt(str(path), 160)} must be a mapping with `experiments:` and/or `grid:`.")
    unknown = [k for k in data if k not in ("name", "experiments", "grid", "claims")]
    if unknown:
        raise SteerError(
            f"{excerpt(unknown[0])}: unknown key. Valid keys of a batch file: name, experiments, grid, claims."
        )
    items = data.get("experiments") or []
    if not isinstance(items, list):
        raise SteerError(f"experiments: expected a list, got {excerpt(items)}.")
    if len(items) > MAX_EXPERIMENTS:
        raise SteerError(
            f"experiments: {len(items)} experiments is more than the {MAX_EXPERIMENTS} allowed in one batch; split "
            "them over several batch files."
        )
    # The name becomes the batch's output folder (outputs/<name>/), so, like a spec's, one plain folder name.
    name = data.get("name")
    if name is not None and not (isinstance(name, str) and is_plain_name(name)):
        raise SteerError(
            f"name: {excerpt(name)} is not a plain folder name; it names the batch's output folder. Use letters, "
            "digits, '.', '_' and '-' only (not '.' or '..'), e.g. name: my-batch."
        )
    exps = [_experiment(item, f"experiments[{i}]", path.parent) for i, item in enumerate(items)]
    if data.get("grid") is not None:
        exps += _grid(data["grid"], path.parent)
    if not exps:
        raise SteerError("batch: no experiments; give `experiments:` and/or `grid:`.")
    if len(exps) > MAX_EXPERIMENTS:
        raise SteerError(
            f"batch: {len(exps)} experiments is more than the {MAX_EXPERIMENTS} allowed in one batch; split them "
            "over several batch files."
        )
    names = [e.name for e in exps]
    dupes = [n for n, times in Counter(names).items() if times > 1]
    if dupes:
        raise SteerError(f"experiments: the name {dupes[0]!r} is used twice; each experiment needs its own folder.")
    claims = parse_claims(data.get("claims"), names)
    stem = path.stem if path.stem not in (".", "..") else "batch"  # a batch file called '...yaml'
    return Batch(name or stem, tuple(exps), claims)


def run_batch(
    batch: Batch,
    open_session: Callable[[Spec], Session],
    out: Path,
    force: bool = False,
    workers: int | None = 1,
    executor: str = "local",
    address: str | None = None,
    on_start: Callable[[Experiment], None] | None = None,
    progress: Callable[[str, int], AbstractContextManager[Callable[[int], None]]] | None = None,
) -> dict[str, Any]:
    """Run every experiment into `out/<name>/`; sessions are opened per distinct checkpoint and mode.

    Every experiment is planned (checkpoint loaded, layers resolved, vector files and source vectors built)
    before the first one runs, so a bad layer in the last experiment fails before the first spends any time.
    With `executor="ray"` one Ray connection (or local instance) serves every experiment.
    """
    check_executor(executor, address)
    sessions: dict[tuple[Any, ...], Session] = {}
    plans = []
    for exp in batch.experiments:
        key = (exp.spec.checkpoint, exp.spec.distribution_mode)
        try:
            if key not in sessions:
                sessions[key] = open_session(exp.spec)
            plans.append((exp, sessions[key], STUDIES[exp.command].plan(exp.spec, sessions[key])))
        except SteerError as e:
            raise SteerError(f"experiment {exp.name!r} ({exp.command}): {e}") from None
    out = prepare_out_dir(out)
    index = []
    with started(executor, address):
        for exp, session, plan in plans:
            if on_start:
                on_start(exp)
            study = STUDIES[exp.command]
            with progress(exp.name, len(study.cells(exp.spec))) if progress else nullcontext(None) as tick:
                report = run_study(
                    study, exp.spec, session, out / exp.name, tick, force, workers, plan, executor, address
                )
            index.append(
                {
                    "name": exp.name,
                    "command": exp.command,
                    "folder": exp.name,
                    "reused_cells": report.get("reused_cells", 0),
                }
            )
    result: dict[str, Any] = {"batch": batch.name, "experiments": index}
    if batch.claims:
        rows = evaluate(batch.claims, out)
        result["claims"] = rows
        atomic_write_json(out / "claims.json", rows)
        first = next(iter(sessions.values()))
        header = (
            f"# {batch.name}: claims and verdicts\n\nEach row: the post's sentence, the setting run, the "
            "criterion written in the batch file before the run, the measured effect over mazes (95% "
            "bootstrap interval, n, Wilcoxon signed-rank p for paired changes), a control, and the verdict "
            "that follows mechanically from interval and criterion. Default checkpoint "
            f"`{first.checkpoint.name}` (sha256 `{first.checkpoint.sha256[:16]}…`), {first.mode} mode. "
            "Per-maze values: each experiment's metrics.json."
        )
        atomic_write_bytes(out / "summary.md", markdown(rows, header).encode())
        write_summary_html(out, rows, batch.name, {**first.checkpoint.provenance(), "mode": first.mode})
    atomic_write_json(out / "batch.json", result)
    return result
