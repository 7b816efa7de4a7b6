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
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steer.analysis import seal
from steer.analysis.claims import Claim, evaluate, experiments_of, parse_claims, replicated
from steer.analysis.seal import Decision, Lock, Replication, decide, lock_path, next_untouched, seal_text, sealed_text
from steer.errors import SteerError, excerpt, shown_key
from steer.io import atomic_write_bytes, atomic_write_json, load_yaml, prepare_out_dir
from steer.maze.env import MAX_SEED
from steer.report.claims_text import markdown
from steer.report.html import write_summary_html
from steer.run.executors import check_executor, started
from steer.run.runner import run_study
from steer.run.session import Session
from steer.run.spec_values import is_seed_rule
from steer.run.specs import Spec, is_plain_name
from steer.studies import STUDIES

_NAME = re.compile(r"[A-Za-z0-9._-]+")
REPLICATION = "replication"  # the replication sample's experiments run in this subfolder of the batch's
MAX_EXPERIMENTS = 10_000  # in one batch, its grid's combinations included
MAX_GROWTH = 10  # samples.grow: the largest factor a claim's sample may grow by
GROWTH_RULE = (
    "A claim whose interval is wider than its stated precision on either sample (underpowered) has its "
    "experiments drawn again, on both samples, with the next step's factor times as many mazes by the same "
    "ranges and rules, and is judged again; growth stops when no claim is underpowered or the steps run out, and "
    "a claim still too wide at the last step stays underpowered."
)


@dataclass(frozen=True)
class Experiment:
    name: str
    command: str
    spec: Spec
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the spec as the file resolves it


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


# -- drawing a batch again on other mazes ------------------------------------------------------------------
# Spec keys that name a sample of mazes (redrawn), and keys that pick a few of them to draw (dropped: each
# study's default, the first of the new seeds, takes their place).
SAMPLE_KEYS = ("seeds", "sources", "targets")
PICK_KEYS = ("show", "grid_seeds")


@dataclass(frozen=True)
class Shift:
    """Every experiment's mazes drawn again `offset` seeds on, by the rule they were drawn by, inside [low, high],
    `factor` times as many (a claim's sample grown to reach its precision)."""

    offset: int
    low: int
    high: int
    factor: int = 1


def _redrawn(value: Any, shift: Shift, where: str, grow: bool = True) -> Any:
    factor = shift.factor if grow else 1
    if isinstance(value, dict) and "from" in value:
        first = _as_int(value["from"], where) + shift.offset
        out = {**value, "from": first}
        if not is_seed_rule(value) and "to" in value:  # a plain range keeps its length (times the factor)
            length = _as_int(value["to"], where) - _as_int(value["from"], where) + 1
            out["to"] = first + length * factor - 1
            if out["to"] > shift.high:
                raise SteerError(
                    f"{where}: the range {value['from']}-{value['to']} moved by {shift.offset}"
                    + (f" and made {factor} times longer" if factor > 1 else "")
                    + f" runs past {shift.high}, the end of the sample; give a larger sample."
                )
            return out
        bound = _as_int(value["to"], where) + shift.offset if "to" in value and factor == 1 else shift.high
        out["to"] = min(bound, shift.high)
        if "count" in value:
            out["count"] = _as_int(value["count"], f"{where}.count") * factor
        if isinstance(value.get("per_maze_dim"), dict):
            out["per_maze_dim"] = {
                k: _as_int(v, f"{where}.per_maze_dim") * factor for k, v in value["per_maze_dim"].items()
            }
        return out
    if isinstance(value, list) and len(value) == 1:
        return value  # one maze drawn for a figure (an illustration): it keeps its seed
    if isinstance(value, list):
        raise SteerError(
            f"{where}: a list of {len(value)} seeds names these mazes and no others, so it cannot be drawn again "
            "on a new sample; write it as a range {from: A, to: B} or a rule {from: A, count: N, where: {...}} "
            "(docs/statistics.md#samples-of-mazes)."
        )
    return value


def _as_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SteerError(f"{where}: expected integer seeds, got {excerpt(value)}.")
    return value


def redraw(data: dict[str, Any], shift: Shift, where: str) -> dict[str, Any]:
    """A spec's raw mapping with every sample of mazes drawn again under `shift` (mean vectors' sources too)."""
    out = copy.deepcopy(data)
    for key in SAMPLE_KEYS:
        if key in out:
            out[key] = _redrawn(out[key], shift, f"{where}.{key}")
    for key in PICK_KEYS:
        out.pop(key, None)
    vectors = [("vector", out.get("vector"))] + [(f"vectors[{i}]", v) for i, v in enumerate(out.get("vectors") or [])]
    for name, vec in vectors:
        if isinstance(vec, dict):
            inner = vec.get("vector") if isinstance(vec.get("vector"), dict) else vec  # compose items nest one
            if "source_seeds" in inner:
                # a mean vector's sources move with the sample but do not grow: they are the vector, not the sample
                where_ = f"{where}.{name}.source_seeds"
                inner["source_seeds"] = _redrawn(inner["source_seeds"], shift, where_, grow=False)
            if isinstance(inner.get("source_seed"), int) and not isinstance(inner["source_seed"], bool):
                inner["source_seed"] += shift.offset
    return out


@dataclass(frozen=True)
class Resolved:
    """An experiment entry of the batch file as the file resolves it: its spec file read and `set:` applied."""

    name: str
    command: str
    data: dict[str, Any]
    spec_path: Path | None


def _resolve(item: Any, where: str, base: Path) -> Resolved:
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
    return Resolved(name, command, data, spec_path)


def _experiment(
    item: Any, where: str, base: Path, shift: Shift | None = None, own: Mapping[str, Any] | None = None
) -> Experiment:
    """One experiment, parsed: drawn again under `shift`, and with `own` (experiment -> replication rule) in place
    of the replication seeds it draws itself, where the lock has moved them."""
    r = _resolve(item, where, base)
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


def _grid(grid: Any, base: Path, shift: Shift | None = None, own: Mapping[str, Any] | None = None) -> list[Experiment]:
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
        out.append(_experiment(item, f"grid[{shown}]", base, shift, own))
    return out


@dataclass(frozen=True)
class Batch:
    name: str
    experiments: tuple[Experiment, ...]
    claims: tuple[Claim, ...] = ()
    # The same experiments drawn again on the replication sample (run into replication/), when the batch has one.
    replication: tuple[Experiment, ...] = ()
    samples: dict[str, Any] | None = None  # {discovery: [from, to], replication: [from, to]} as run
    grow: tuple[int, ...] = ()  # samples.grow: the factors an underpowered claim's experiments grow by, in turn
    path: Path | None = None  # where it was read from, to draw its experiments again at a larger size
    seeds: tuple[int, int] | None = None  # --seeds, as loaded
    factor: int = 1
    # The replication sample this run measures and the lock to write before measuring it (steer.analysis.seal);
    # None without a replication sample (or with --seeds).
    seal: Decision | None = None


def _sample(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, dict) or set(value) != {"from", "to"}:
        raise SteerError(f"{where}: expected a range of seeds {{from: A, to: B}}, got {excerpt(value)}.")
    low, high = _as_int(value["from"], f"{where}.from"), _as_int(value["to"], f"{where}.to")
    if high < low:
        raise SteerError(f"{where}: 'to' ({high}) is below 'from' ({low}).")
    return low, high


def parse_seed_range(text: str, where: str = "--seeds") -> tuple[int, int]:
    """`FROM-TO` (inclusive), as `steer batch --seeds 300-999` takes it."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if m is None or int(m[2]) < int(m[1]):
        raise SteerError(f"{where}: {excerpt(text)} is not a range of seeds FROM-TO with FROM <= TO, e.g. 300-999.")
    return int(m[1]), int(m[2])


def _spec_seeds(spec: Spec) -> set[int]:
    found = set(spec.seeds) | set(spec.sources or ()) | set(spec.targets or ())
    for vec in [spec.vector, *(item.vector for item in spec.vectors or ())]:
        if vec is not None and vec.source_seeds:
            found |= set(vec.source_seeds)
    return found


def _inside(exps: list[Experiment], low: int, high: int, what: str) -> None:
    """Every sample of mazes lies in [low, high]; one-maze illustrations may keep their seed."""
    for exp in exps:
        seeds = _spec_seeds(exp.spec)
        outside = sorted(s for s in seeds if not low <= s <= high)
        if outside and len(seeds) > 1:
            raise SteerError(
                f"experiment {exp.name!r}: seed {outside[0]} lies outside the {what} sample {low}-{high}; "
                "draw its mazes inside it, or widen the sample."
            )


def _grow_steps(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    ok = isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or any(v < 2 or v > MAX_GROWTH for v in value) or list(value) != sorted(set(value)):
        raise SteerError(
            f"samples.grow: {excerpt(value)} is not a list of increasing whole factors from 2 to {MAX_GROWTH}, e.g. "
            "[2, 4]: how many times its mazes an underpowered claim's experiments draw, step by step."
        )
    return tuple(value)


def load_batch(
    path: str | Path,
    seeds: tuple[int, int] | None = None,
    factor: int = 1,
    fresh: bool = False,
    sample: Replication | None = None,
) -> Batch:
    """The batch file at `path`; with `seeds` (FROM, TO), every experiment drawn again on those mazes alone;
    with `factor`, every experiment's sample of mazes `factor` times as large (by the same ranges and rules).

    A batch with a replication sample is checked against its lock (steer.analysis.seal) before anything runs:
    the sample it measures is the file's or the lock's fresh one (`sample`, when growing, is the one already
    decided); `fresh` draws the next untouched one (--fresh-replication); criteria changed since the sample was
    opened are refused."""
    path = Path(path)
    data = _load_yaml(path, "batch")
    if not isinstance(data, dict):
        raise SteerError(f"batch: {excerpt(str(path), 160)} must be a mapping with `experiments:` and/or `grid:`.")
    unknown = [k for k in data if k not in ("name", "experiments", "grid", "claims", "samples")]
    if unknown:
        raise SteerError(
            f"{excerpt(unknown[0])}: unknown key. Valid keys of a batch file: name, experiments, grid, claims, samples."
        )
    samples = data.get("samples")
    if samples is not None and (not isinstance(samples, dict) or set(samples) - {"discovery", "replication", "grow"}):
        raise SteerError(
            "samples: expected {discovery: {from: A, to: B}, replication: {from: C, to: D}} (disjoint ranges), "
            "and optionally grow: [2, 4]."
        )
    samples = samples or {}
    grow = _grow_steps(samples.get("grow"))
    discovery = _sample(samples["discovery"], "samples.discovery") if "discovery" in samples else None
    replication = _sample(samples["replication"], "samples.replication") if "replication" in samples else None
    if replication is not None and discovery is None:
        raise SteerError("samples.discovery: missing; the replication sample is drawn like the discovery one.")
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
    stem = path.stem if path.stem not in (".", "..") else "batch"  # a batch file called '...yaml'
    batch_name = name or stem
    # The replication sample as the file states it: the batch's range, and the rules of experiments that draw
    # their own (steer discover). Which one this run measures is the lock's to say (--seeds measures neither).
    resolved = [_resolve(item, f"experiments[{i}]", path.parent) for i, item in enumerate(items)]
    from_file = Replication(replication, {r.name: r.data["replication"] for r in resolved if "replication" in r.data})
    lock = Lock.read(lock_path(path)) if seeds is None and (from_file.batch or from_file.rules) else None
    if seeds is not None or not (from_file.batch or from_file.rules):
        chosen = None
    elif sample is not None:
        chosen = sample
    elif fresh:
        chosen = next_untouched(lock, from_file, discovery, MAX_SEED)
    else:
        chosen = seal.active(lock, from_file)
    if chosen is not None:
        replication = chosen.batch
    if discovery and replication and not (replication[0] > discovery[1] or replication[1] < discovery[0]):
        raise SteerError(
            f"samples: the discovery {discovery[0]}-{discovery[1]} and replication {replication[0]}-{replication[1]} "
            "samples overlap; a replication needs mazes the discovery never saw."
        )
    start = discovery[0] if discovery else 0
    own = dict(chosen.rules) if chosen is not None else None

    def draw(shift: Shift | None) -> list[Experiment]:
        exps = [_experiment(item, f"experiments[{i}]", path.parent, shift, own) for i, item in enumerate(items)]
        if data.get("grid") is not None:
            exps += _grid(data["grid"], path.parent, shift, own)
        return exps

    if seeds is not None:  # --seeds: this sample alone
        exps = draw(Shift(seeds[0] - start, *seeds, factor))
        _inside(exps, *seeds, "--seeds")
        discovery, replication = seeds, None
    else:
        exps = draw(None if factor == 1 else Shift(0, *(discovery or (0, MAX_SEED)), factor))
        if discovery is not None:
            _inside(exps, *discovery, "discovery")
    again: list[Experiment] = []
    if replication is not None:
        again = draw(Shift(replication[0] - start, *replication, factor))
        _inside(again, *replication, "replication")
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
    if again and REPLICATION in names:
        raise SteerError(
            f"experiments: the name {REPLICATION!r} is the replication sample's folder; rename that experiment."
        )
    claims = parse_claims(data.get("claims"), names)
    drawn = {"discovery": list(discovery) if discovery else None}
    if replication is not None:
        drawn["replication"] = list(replication)
    decision = None
    if chosen is not None and sample is None:
        # The seeds each experiment's own replication rule drew, for the lock's overlap checks.
        spans = {e.name: _own_span(e.spec) for e in exps if chosen.rules.get(e.name) is not None}
        measured = Replication(chosen.batch, chosen.rules, {k: v for k, v in spans.items() if v is not None})
        text = sealed_text(
            [c for c in data.get("claims") or [] if isinstance(c, dict)],
            [{"name": e.name, "command": e.command, "spec": e.raw} for e in exps],
            discovery,
            grow,
        )
        decision = decide(lock, lock_path(path), batch_name, text, measured, from_file, fresh)
    if factor == 1:
        for step in grow:  # every size a claim may grow to is checked now, before anything runs
            load_batch(path, seeds, step, sample=chosen)
    return Batch(batch_name, tuple(exps), claims, tuple(again), drawn, grow, path, seeds, factor, decision)


def _own_span(spec: Spec) -> tuple[int, int] | None:
    seeds = spec.extra.get("replication")
    return (min(seeds), max(seeds)) if seeds else None


Plan = tuple[Experiment, str, Session, Any]  # an experiment, its folder, its session and its study's plan


@dataclass
class BatchRun:
    """One run of a batch: its sessions (one per checkpoint and mode), the folders it ran and how, and where to."""

    batch: Batch
    out: Path
    open_session: Callable[[Spec], Session]
    options: dict[str, Any]
    sessions: dict[tuple[Any, ...], Session] = field(default_factory=dict)
    index: dict[str, dict[str, Any]] = field(default_factory=dict)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def plan(self, b: Batch, names: set[str] | None = None) -> list[Plan]:
        """Every experiment of `b` (or those named), on both samples, planned before any runs."""
        runs = [(exp, exp.name) for exp in b.experiments] + [
            (exp, f"{REPLICATION}/{exp.name}") for exp in b.replication
        ]
        plans = []
        for exp, folder in runs:
            if names is not None and exp.name not in names:
                continue
            key = (exp.spec.checkpoint, exp.spec.distribution_mode)
            try:
                if key not in self.sessions:
                    self.sessions[key] = self.open_session(exp.spec)
                plans.append((exp, folder, self.sessions[key], STUDIES[exp.command].plan(exp.spec, self.sessions[key])))
            except SteerError as e:
                raise SteerError(f"experiment {folder!r} ({exp.command}): {e}") from None
        return plans

    def run(self, plans: list[Plan], factor: int) -> None:
        o = self.options
        for exp, folder, session, plan in plans:
            if o["on_start"]:
                o["on_start"](exp if folder == exp.name else Experiment(folder, exp.command, exp.spec))
            study = STUDIES[exp.command]
            # A study whose run identity holds its seeds (transfer, probe) cannot resume a larger sample: in a batch
            # that grows, its folder may hold the grown run of an earlier invocation, so it is computed afresh.
            again = o["force"] or (not study.grows and bool(self.batch.grow))
            progress = o["progress"]
            with progress(folder, study.total_cells(exp.spec)) if progress else nullcontext(None) as tick:
                report = run_study(
                    study,
                    exp.spec,
                    session,
                    self.out / folder,
                    tick,
                    again,
                    o["workers"],
                    plan,
                    o["executor"],
                    o["address"],
                )
            self.index[folder] = {
                "name": exp.name,
                "command": exp.command,
                "folder": folder,
                "sample": REPLICATION if folder != exp.name else "discovery",
                "factor": factor,
                "reused_cells": report.get("reused_cells", 0),
            }

    def judge(self) -> list[dict[str, Any]]:
        rows = evaluate(self.batch.claims, self.out)
        return replicated(rows, evaluate(self.batch.claims, self.out / REPLICATION)) if self.batch.replication else rows

    def grow(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each step of `samples.grow` in turn: the underpowered claims' experiments drawn again at that factor on
        both samples, and every claim judged again; until none is underpowered or the steps run out."""
        b = self.batch
        for factor in b.grow:
            weak = [c for c, r in zip(b.claims, rows, strict=True) if r["verdict"] == "underpowered"]
            if not weak:
                break
            names = set().union(*(experiments_of(c) for c in weak))
            assert b.path is not None
            sample = b.seal.replication if b.seal else None
            self.run(self.plan(load_batch(b.path, b.seeds, factor, sample=sample), names), factor)
            rows = self.judge()
            self.rounds.append({"factor": factor, "claims": [c.id for c in weak], "experiments": sorted(names)})
        return rows


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

    Four steps: plan every experiment (checkpoint loaded, layers resolved, vector files and source vectors built)
    before the first runs, so a bad layer in the last experiment fails before the first spends any time; seal the
    criteria (the lock written before the replication sample is measured); run and judge; grow the underpowered
    claims' samples; then write the summaries. With `executor="ray"` one Ray connection serves every experiment.
    """
    check_executor(executor, address)
    options = {
        "force": force,
        "workers": workers,
        "executor": executor,
        "address": address,
        "on_start": on_start,
        "progress": progress,
    }
    state = BatchRun(batch, Path(out), open_session, options)
    plans = state.plan(batch)
    state.out = prepare_out_dir(out)
    if batch.seal is not None and batch.seal.write:
        batch.seal.lock.write()
    rows: list[dict[str, Any]] = []
    with started(executor, address):
        state.run(plans, batch.factor)
        if batch.claims:
            rows = state.grow(state.judge())
    return _summarise(state, rows)


def _summarise(state: BatchRun, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """batch.json, and with claims claims.json, summary.md and summary.html."""
    batch, out = state.batch, state.out
    result: dict[str, Any] = {"batch": batch.name, "samples": batch.samples, "experiments": list(state.index.values())}
    sealed = seal_text(batch.seal.lock if batch.seal else None, batch.seal.entry if batch.seal else None)
    result["seal"] = sealed
    if batch.grow:
        result["growth"] = {"steps": list(batch.grow), "rule": GROWTH_RULE, "rounds": state.rounds}
    if batch.claims:
        grown = {e["name"]: e["factor"] for e in state.index.values()}
        for claim, row in zip(batch.claims, rows, strict=True):
            row["sample_factor"] = max(grown.get(n, 1) for n in experiments_of(claim))
        result["claims"] = rows
        atomic_write_json(out / "claims.json", rows)
        first = next(iter(state.sessions.values()))
        header = summary_header(batch, state.rounds, sealed["said"], first)
        atomic_write_bytes(out / "summary.md", markdown(rows, header).encode())
        write_summary_html(out, rows, batch.name, {**first.checkpoint.provenance(), "mode": first.mode}, sealed["said"])
    atomic_write_json(out / "batch.json", result)
    return result


def summary_header(batch: Batch, rounds: list[dict[str, Any]], sealed: str, session: Session) -> str:
    samples = ""
    if batch.replication:
        (d0, d1), (r0, r1) = batch.samples["discovery"], batch.samples["replication"]
        samples = (
            f" Each claim is measured on a discovery sample (the experiments' mazes, seeds {d0}-{d1}) and "
            f"on a disjoint replication sample (the same experiments drawn again from seeds {r0}-{r1} by "
            "their own rules); it holds or fails only when both samples say so, and one holding while the "
            "other fails is 'does not replicate'. Pooled: every maze of both samples."
        )
    if batch.grow:
        grew = "; ".join(f"x{r['factor']}: {', '.join(r['experiments'])}" for r in rounds) or "none was needed"
        samples += f" {GROWTH_RULE} Steps {list(batch.grow)}; grown: {grew}."
    return (
        f"# {batch.name}: claims and verdicts\n\n{sealed}\n\nEach row: the post's sentence, the setting run, the "
        "criterion, the measured effect over mazes (95% bootstrap interval, n, what was left out and why, Wilcoxon "
        "signed-rank p for paired changes, Holm-adjusted p over the batch's findings, the effect detectable at this "
        "n with 80% power), the fractions of mazes moved the claimed way, the opposite way and not at all (95% "
        "Wilson intervals), a control (judged against, maze by maze, unless marked a reference) and the verdict "
        "that follows mechanically from interval and criterion: an interval wholly beyond the threshold decides, "
        f"whatever its width; a straddling one wider than the precision is underpowered.{samples} Default "
        f"checkpoint `{session.checkpoint.name}` (sha256 `{session.checkpoint.sha256[:16]}…`), {session.mode} mode. "
        "Per-maze values: each experiment's metrics.json."
    )


def claim_experiments(claim: Claim) -> set[str]:
    """The experiments a claim reads (steer.analysis.claims.experiments_of)."""
    return experiments_of(claim)
