"""Experiments end to end: spec -> maze pairs -> vectors -> patched forward passes -> fields -> files.

The CLI is a thin layer over these functions; a notebook can call them the same way:

    spec = load_spec("configs/demo.yaml")
    session = open_session(spec)
    result = run_apply(spec, session, Path("outputs/demo"))
"""

from __future__ import annotations

import contextlib
import multiprocessing
import platform
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steer import __version__, checkpoints
from steer.allocator import keep_freed_memory
from steer.env import MazeRenderer
from steer.errors import SteerError
from steer.hooks import check_shape
from steer.io import atomic_write_json
from steer.maze import Maze
from steer.metrics import maze_metrics, summarize
from steer.policy import ImpalaPolicy, display_name
from steer.render import LEGEND, Panel, figure, save_png
from steer.runs import RunFolder
from steer.specs import DEFAULT_LAYER, Spec, check_keys
from steer.vectors import PairSpec, SteeringVector, apply_edits, compute_vector
from steer.vfield import FieldInputs, VectorField, vector_fields

OnSeed = Callable[[int], None]


@dataclass
class Session:
    """A loaded checkpoint, the environment mode experiments run in, and a renderer for that mode."""

    checkpoint: checkpoints.Checkpoint
    mode: str
    mode_source: str
    renderer: MazeRenderer
    device: str = "cpu"

    @property
    def policy(self):  # noqa: ANN201 - ImpalaPolicy
        return self.checkpoint.policy

    def recipe(self) -> tuple[str, str, str, str]:
        """What a worker process needs to rebuild this session (checkpoints and envs do not pickle)."""
        return (str(self.checkpoint.path), self.mode, self.mode_source, self.device)

    @classmethod
    def from_recipe(cls, recipe: tuple[str, str, str, str]) -> Session:
        path, mode, source, device = recipe
        keep_freed_memory()
        return cls(checkpoints.load(path, device=device), mode, source, MazeRenderer(mode), device)


def open_session(spec: Spec, checkpoint: str | None = None, device: str = "cpu") -> Session:
    """Load the checkpoint (CLI value, else the spec's, else STEER_CHECKPOINT/default) and check the layer."""
    if device != "cpu" and not (device.startswith("cuda") and torch.cuda.is_available()):
        raise SteerError(f"--device: {device!r} is not available here; use 'cpu'.")
    keep_freed_memory()
    ck = checkpoints.load(checkpoint or spec.checkpoint, device=device)
    ck.policy.resolve(spec.layer)
    if spec.distribution_mode:
        mode, source = spec.distribution_mode, "spec"
    else:
        mode, source = ck.mode, "checkpoint"
    return Session(ck, mode, source, MazeRenderer(mode), device)


def provenance(session: Session, spec: Spec, layer: str) -> dict[str, Any]:
    return {
        "checkpoint": session.checkpoint.provenance(),
        "distribution_mode": session.mode,
        "distribution_mode_source": session.mode_source,
        "layer": layer,
        "versions": {
            "steer": __version__,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "procgen": _procgen_version(),
        },
    }


def _procgen_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("procgen-mirror", "procgen"):
        try:
            return f"{dist} {version(dist)}"
        except PackageNotFoundError:
            continue
    return "unknown"


def target_maze(session: Session, spec: Spec, seed: int) -> Maze:
    """The maze a spec means by `seed`: the generated level with the spec's `target_edits`."""
    return apply_edits(session.renderer.level(seed), spec.target_edits)


# -- compute-vector -------------------------------------------------------------------------------


def vector_filename(kind: str, seed: int) -> str:
    return f"vector-{kind}-seed{seed}.pt"


def run_compute_vector(
    spec: Spec, session: Session, out: Path, on_seed: OnSeed | None = None, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Write one vector file per seed of the spec (the pair built from that seed's maze)."""
    check_keys(spec, "compute-vector")
    if spec.vector is None or spec.vector.pair is None:
        raise SteerError("vector: compute-vector needs an inline vector spec, e.g. vector: {kind: cheese}.")
    if spec.vector.source_seed is not None:
        raise SteerError(
            "vector.source_seed: compute-vector makes a vector from each seed in `seeds`; list the source "
            "seed there instead."
        )
    prov = provenance(session, spec, display_name(session.policy.resolve(spec.layer)))
    run = RunFolder.open(out, "compute-vector", spec.raw, [f"seed-{s}" for s in spec.seeds], prov, force)
    done, skipped, reused = _run_cells(run, spec.seeds, VectorJob(spec, run.path), session, on_seed, workers)
    report = {"command": "compute-vector", "spec": spec.raw, "provenance": prov, "vectors": done,
              "skipped": skipped, "reused_cells": reused}
    run.complete(report, name="vectors.json")
    return report


CellResult = tuple[str, list[str], dict[str, Any]]


@dataclass(frozen=True)
class VectorJob:
    """compute-vector's work for one seed: build the pair, save the vector."""

    spec: Spec
    out: Path

    def __call__(self, session: Session, seed: int) -> CellResult:
        assert self.spec.vector is not None and self.spec.vector.pair is not None
        try:
            vec = build_vector(session, self.spec, seed, self.spec.vector.pair)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        name = vector_filename(vec.kind, seed)
        vec.save(self.out / name)
        return "done", [name], {"seed": seed, "file": name, "norm": float(vec.tensor.norm())}


Job = Callable[[Session, int], CellResult]
_worker: tuple[Session, Job] | None = None


def _init_worker(recipe: tuple[str, str, str, str], job: Job, threads: int) -> None:
    global _worker
    # The parent's thread count, not one: oneDNN picks its convolution blocking by thread count, and a
    # different blocking changes float32 rounding. Same threads, same bits as `--workers 1`.
    torch.set_num_threads(threads)
    _worker = (Session.from_recipe(recipe), job)


def _work(seed: int) -> tuple[int, CellResult]:
    assert _worker is not None
    session, job = _worker
    return seed, job(session, seed)


def _run_cells(
    run: RunFolder,
    seeds: tuple[int, ...],
    job: Job,
    session: Session,
    on_seed: OnSeed | None,
    workers: int = 1,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Run `job` per seed, reusing cells a previous run of the same spec finished; record each as it ends.

    With `workers > 1` the seeds are spread over that many processes, each with its own procgen
    environment and policy; results are gathered back in seed order.
    """
    records: dict[int, tuple[str, dict[str, Any]]] = {}
    reused = 0

    def keep(seed: int, result: CellResult) -> None:
        status, files, data = result
        run.record(f"seed-{seed}", status, files, data)
        records[seed] = (status, data)
        if on_seed:
            on_seed(seed)

    try:
        todo = []
        for seed in seeds:
            rec = run.finished(f"seed-{seed}")
            if rec is None:
                todo.append(seed)
            else:
                records[seed] = (rec["status"], rec["result"])
                reused += 1
                if on_seed:
                    on_seed(seed)
        if workers > 1 and len(todo) > 1:
            ctx = multiprocessing.get_context("spawn")  # fork after torch/OpenMP start-up can deadlock
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_init_worker,
                                     initargs=(session.recipe(), job, torch.get_num_threads())) as pool:
                for future in as_completed([pool.submit(_work, seed) for seed in todo]):
                    keep(*future.result())
        else:
            for seed in todo:
                keep(seed, job(session, seed))
    except BaseException:
        # Ctrl-C, a full disk or a crash: finished cells and their files stay; the manifest says the run
        # stopped, unless it cannot be written either (the original error is the one to report).
        with contextlib.suppress(SteerError):
            run.close("interrupted")
        raise
    done = [records[s][1] for s in seeds if records[s][0] == "done"]
    skipped = [records[s][1] for s in seeds if records[s][0] != "done"]
    return done, skipped, reused


def build_vector(
    session: Session, spec: Spec, seed: int, pair: PairSpec, layer: str | None = None
) -> SteeringVector:
    """The vector of `pair` on `seed`'s maze (with the spec's target edits) at `layer` (default: the spec's)."""
    meta = {
        "source_seed": seed,
        "target_edits": spec.target_edits and [list(e) for e in spec.target_edits],
        "checkpoint_sha256": session.checkpoint.sha256,
        "checkpoint": session.checkpoint.name,
    }
    maze = target_maze(session, spec, seed)
    return compute_vector(session.policy, session.renderer, maze, pair, layer or spec.layer, meta)


# -- apply ----------------------------------------------------------------------------------------


def resolve_layer(policy: ImpalaPolicy, name: str, where: str) -> str:
    """The display name of a hook point, or an error naming the spec field it came from."""
    try:
        return display_name(policy.resolve(name))
    except SteerError:
        raise SteerError(
            f"{where}: {name!r} is not a hook point of this policy. Valid names: {', '.join(policy.hook_names)}."
        ) from None


def load_vector_file(session: Session, path: Path, layer: str | None, where: str) -> SteeringVector:
    """A saved vector, checked against this policy; `layer`, when given, must be the file's layer."""
    try:
        vec = SteeringVector.load(path)
    except SteerError as e:
        raise SteerError(str(e).replace("vector.file:", f"{where}.file:", 1)) from None
    file_layer = resolve_layer(session.policy, vec.layer, f"{where}.file ({str(path)!r})")
    if layer is not None and resolve_layer(session.policy, layer, f"{where}.layer") != file_layer:
        raise SteerError(
            f"{where}.layer: {layer!r} is not the layer the vector file {str(path)!r} was computed at "
            f"({file_layer!r}). Drop the layer or recompute the vector at that layer."
        )
    check_shape(session.policy, file_layer, vec.tensor, where=f"{where}.file")
    vec.layer = file_layer
    return vec


def run_apply(
    spec: Spec, session: Session, out: Path, on_seed: OnSeed | None = None, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Patch each target maze with `coeff * vector`; write a PNG and field JSON per seed, and metrics.json."""
    check_keys(spec, "apply")
    if spec.vector is None:
        raise SteerError("vector: missing; give an inline vector spec ({kind: cheese}) or {file: PATH}.")
    if spec.coeff is None:
        raise SteerError("coeff: missing; give the coefficient to multiply the vector by, e.g. coeff: -1.")
    fixed: SteeringVector | None = None
    if spec.vector.file is not None:
        # A file fixes the layer; the spec's `layer` may only restate it (DEFAULT_LAYER means "not given").
        explicit = spec.layer if spec.layer != DEFAULT_LAYER else None
        fixed = load_vector_file(session, spec.vector.file, explicit, "vector")
    elif spec.vector.source_seed is not None:
        fixed = build_vector(session, spec, spec.vector.source_seed, spec.vector.pair)
    layer = fixed.layer if fixed else display_name(session.policy.resolve(spec.layer))
    prov = provenance(session, spec, layer)
    run = RunFolder.open(out, "apply", spec.raw, [f"seed-{s}" for s in spec.seeds], prov, force)
    job = ApplyJob(spec, run.path, layer, spec.coeff, fixed)
    results, skipped, reused = _run_cells(run, spec.seeds, job, session, on_seed, workers)
    report = {
        "command": "apply",
        "spec": spec.raw,
        "provenance": prov,
        "mazes": results,
        "skipped": skipped,
        "reused_cells": reused,
        "summary": summarize(results),
    }
    run.complete(report)
    return report


@dataclass(frozen=True)
class ApplyJob:
    """apply's work for one seed: the original and patched fields, their JSON, PNG and metrics."""

    spec: Spec
    out: Path
    layer: str
    coeff: float
    fixed: SteeringVector | None  # a vector file or a source seed's vector; None: each maze's own

    def __call__(self, session: Session, seed: int) -> CellResult:
        spec, layer, coeff = self.spec, self.layer, self.coeff
        assert spec.vector is not None
        try:
            target = target_maze(session, spec, seed)
            vec = self.fixed or build_vector(session, spec, seed, spec.vector.pair)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        inputs = FieldInputs.render(session.renderer, target, session.device)
        original, patched = vector_fields(session.policy, inputs, layer, [None, coeff * vec.tensor], spec.batch_size)
        source = vec.meta.get("source_seed")
        m = {"seed": seed, **maze_metrics(original, patched), "coeff": coeff, "vector_source_seed": source}
        files = [f"vfield-seed{seed}.json", f"field-seed{seed}.png"]
        _write_field_json(self.out / files[0], seed, original, patched)
        title = (f"seed {seed} · {vec.kind} vector{'' if source == seed else f' from seed {source}'}"
                 f" · {layer} · coeff {coeff:g} · {session.checkpoint.name} ({session.mode})")
        save_png(_apply_figure(title, original, patched, m), self.out / files[1])
        return "done", files, m


def _write_field_json(path: Path, seed: int, original: VectorField, patched: VectorField) -> None:
    maze = original.maze
    atomic_write_json(path, {
        "seed": seed,
        "world_dim": maze.world_dim,
        "maze_dim": maze.maze_dim,
        "positions": [list(p) for p in original.positions],
        "original": original.to_json(),
        "patched": patched.to_json(),
    }, compact=True)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _apply_figure(title: str, original: VectorField, patched: VectorField, m: dict[str, Any]):  # noqa: ANN202
    caption = "P(cheese | decision square) = {}" if m["decision_square"] else "mean P(step toward cheese) = {}"
    key = "p_cheese_ds" if m["decision_square"] else "p_toward_cheese"
    before, after = caption.format(_fmt(m[key]["original"])), caption.format(_fmt(m[key]["patched"]))
    panels = [
        Panel(original.maze, original.positions, original.arrows, f"original\n{before}"),
        Panel(patched.maze, patched.positions, patched.arrows, f"patched\n{after}"),
        Panel(original.maze, original.positions, patched.arrows - original.arrows,
              f"difference (patched - original)\nmean TV distance {m['mean_tv']:.2f}", color=(200, 30, 40)),
    ]
    return figure(title, panels, footer=LEGEND)
