"""The experiments of a batch file: each entry resolved (its spec file read, `set:` applied), parsed by its
study, and a grid expanded into experiments; every one validated before anything runs."""

from __future__ import annotations

import copy
import itertools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steer.batch.draw import Shift, redraw
from steer.errors import SteerError, excerpt, shown_key
from steer.io import load_yaml
from steer.run.specs import Spec
from steer.studies import STUDIES

_NAME = re.compile(r"[A-Za-z0-9._-]+")
MAX_EXPERIMENTS = 10_000  # in one batch, its grid's combinations included


@dataclass(frozen=True)
class Experiment:
    name: str
    command: str
    spec: Spec
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the spec as the file resolves it


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


@dataclass(frozen=True)
class Resolved:
    """An experiment entry of the batch file as the file resolves it: its spec file read and `set:` applied."""

    name: str
    command: str
    data: dict[str, Any]
    spec_path: Path | None


def resolve(item: Any, where: str, base: Path) -> Resolved:
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
        raw = load_yaml(spec_path, f"{where}.spec")
    if not isinstance(raw, dict):
        raise SteerError(f"{where}.spec: expected a spec file name or an inline spec mapping, got {excerpt(raw)}.")
    data = copy.deepcopy(raw)
    overrides = item.get("set") or {}
    if not isinstance(overrides, dict):
        raise SteerError(f"{where}.set: expected a mapping of spec keys to values, got {excerpt(overrides)}.")
    for key, value in overrides.items():
        _set_path(data, str(key), value, f"{where}.set")
    data["name"] = name
    return Resolved(name, command, data, spec_path)


def experiment(
    item: Any, where: str, base: Path, shift: Shift | None = None, own: Mapping[str, Any] | None = None
) -> Experiment:
    """One experiment, parsed: drawn again under `shift`, and with `own` (experiment -> replication rule) in place
    of the replication seeds it draws itself, where the lock has moved them."""
    r = resolve(item, where, base)
    data = copy.deepcopy(r.data)
    if own and r.name in own:
        data["replication"] = copy.deepcopy(own[r.name])
    if shift is not None:
        data = redraw(data, shift, where)
    try:
        spec = STUDIES[r.command].parse(data, r.spec_path)
    except SteerError as e:
        raise SteerError(f"{where} ({r.name}): {e}") from None
    return Experiment(r.name, r.command, spec, r.data)


def expand_grid(
    grid: Any, base: Path, shift: Shift | None = None, own: Mapping[str, Any] | None = None
) -> list[Experiment]:
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
        out.append(experiment(item, f"grid[{shown}]", base, shift, own))
    return out
