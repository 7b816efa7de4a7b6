"""The one runner every study goes through: check → plan → provenance → run folder → cells → report → files.

    from steer import run_spec                         # by name, through the study registry (steer.studies)
    report = run_spec("apply", "configs/demo.yaml", out="outputs/demo")

or, with a session kept open across runs (as `batch` and notebooks do), handing the runner the study:

    study = STUDIES["apply"]
    spec = study.parse(yaml.safe_load(open("configs/demo.yaml")), Path("configs/demo.yaml"))
    report = run_study(study, spec, open_session(spec), Path("outputs/demo"))
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import pickle
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import fields
from functools import lru_cache, partial
from pathlib import Path
from typing import Any, overload

import torch

from steer.errors import SteerError
from steer.io import atomic_write_bytes, sha256_file
from steer.report.figures import save_figure
from steer.report.tables import SCHEMA, csv_writer, parquet_available, parquet_writer, schema
from steer.run.cores import one_thread, usable_cores
from steer.run.executors import check_executor, ray_cells, started
from steer.run.runs import RunFolder, run_identity
from steer.run.session import Recipe, Session, provenance
from steer.run.specs import Spec, check_seed_modes
from steer.run.study import STAGE_FOLDER, CellResult, Finished, Plan, Study, run_cell
from steer.run.vector_plan import vector_inputs

OnCell = Callable[[int], None]


class CellResults(Sequence[dict[str, Any]]):
    """The results of a run's cells, in seed order, each read from the run's compact record when it is used.

    A study's report may go over them several times; the run's process keeps only the compact text (about 1 KB
    a maze for behaviour-stats, against ~6 KB parsed), so its memory does not grow with the parsed results of
    10,000 mazes. Put into a report body (`"mazes": done`), it becomes a list (`_plain`) before the report is
    written or returned.
    """

    def __init__(self, run: RunFolder, cells: list[str]) -> None:
        self._run, self._cells = run, cells

    def __len__(self) -> int:
        return len(self._cells)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self._result(c) for c in self._cells[i]]
        return self._result(self._cells[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._result(c) for c in self._cells)

    def _result(self, cell: str) -> dict[str, Any]:
        record = self._run.record_of(cell)
        assert record is not None  # the runner lists only cells it recorded or reused
        return record["result"]


_session: Session | None = None  # a worker process's own session, built once


def default_workers() -> int:
    """One worker per core this process may run on."""
    return usable_cores()


def _exit_with_parent(parent: int) -> None:
    # A parent killed with SIGKILL cannot stop its workers, and they never see the task queue close (each
    # holds its write end too): without this they would wait forever, orphaned.
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def _init_worker(recipe: Recipe, parent: int) -> None:
    global _session
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True, name="steer-parent-watch").start()
    # One thread per worker, as for a cell in the parent (steer.run.cores says why): a single-threaded process does
    # not stall when another process holds a core, and the run's bytes do not depend on where its cells ran.
    torch.set_num_threads(1)
    _session = Session.from_recipe(recipe, render_threads=1)


@lru_cache(maxsize=2)
def _plan(blob: bytes) -> Plan:
    # A task carries its run's pickled plan; each worker unpickles a plan once, not once per cell.
    return pickle.loads(blob)


def _work(blob: bytes, out: Path, seed: int) -> tuple[int, CellResult]:
    assert _session is not None
    return seed, run_cell(_plan(blob), _session, seed, out)


# The worker processes outlive one run: starting one costs a second or two (torch import, checkpoint load),
# so a batch's experiments, a notebook's runs and a test session's runs share them. One pool at a time,
# for one checkpoint and device; a different session replaces it.
_pool: tuple[tuple[Recipe, int], ProcessPoolExecutor] | None = None


def worker_pool(recipe: Recipe, workers: int) -> ProcessPoolExecutor:
    """The pool of `workers` single-threaded processes holding the session `recipe` describes."""
    global _pool
    key = (recipe, workers)
    if _pool is not None and _pool[0] == key:
        return _pool[1]
    close_workers()
    ctx = multiprocessing.get_context("spawn")  # fork after torch/OpenMP start-up can deadlock
    pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(recipe, os.getpid()))
    _pool = (key, pool)
    return pool


def close_workers() -> None:
    """Stop the worker processes (they are started again when needed)."""
    global _pool
    if _pool is not None:
        _pool[1].shutdown(wait=True, cancel_futures=True)
        _pool = None


atexit.register(close_workers)


def _plain(value: Any) -> Any:
    """A report body with each `CellResults` it holds (a study listing its mazes) as a list: the report a caller
    gets is plain data, to compare, change or dump like any other."""
    if isinstance(value, CellResults):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if type(value) in (list, tuple):  # not a named tuple, whose fields are its own
        return type(value)(_plain(v) for v in value)
    return value


def run_cells(
    run: RunFolder,
    seeds: tuple[int, ...],
    plan: Plan,
    session: Session,
    on_cell: OnCell | None = None,
    workers: int | None = 1,
    executor: str = "local",
    address: str | None = None,
) -> tuple[CellResults, list[dict[str, Any]], int]:
    """Run `plan.cell` per seed, reusing cells a previous run of the same spec finished; record each as it ends.

    With `workers > 1` (None: one per core) and more than one cell to compute, the seeds are spread over that
    many single-threaded processes, each with its own procgen environment and policy. With `executor="ray"`
    they run as Ray tasks on the cluster already connected (`steer.run.executors.started`), else at `address`,
    else on a local Ray instance started for this run. Either way only this process writes the run folder.
    Returns (done results, skipped results, reused count), in seed order; the done results are read from the
    run's records as they are used (`CellResults`), so only their compact text stays in memory.

    Kept whole: resume, the workers' pool and the progress callback share the run's state in one loop."""
    workers = default_workers() if workers is None else workers
    statuses: dict[int, str] = {}
    reused = 0

    def keep(seed: int, result: CellResult) -> None:
        status, files, data = result
        run.record(f"seed-{seed}", status, files, data)
        statuses[seed] = status
        if on_cell:
            on_cell(seed)

    try:
        todo = []
        for seed in seeds:
            rec = run.finished(f"seed-{seed}")
            if rec is None:
                todo.append(seed)
            else:
                statuses[seed] = rec["status"]
                reused += 1
                if on_cell:
                    on_cell(seed)
        if executor == "ray" and todo:
            with started("ray", address), contextlib.closing(ray_cells(plan, session, tuple(todo), run.path)) as cells:
                for seed, result in cells:
                    keep(seed, result)
        elif workers > 1 and len(todo) > 1:
            pool = worker_pool(session.recipe(), workers)
            blob = pickle.dumps(plan)
            futures = [pool.submit(_work, blob, run.path.resolve(), seed) for seed in todo]
            try:
                for future in as_completed(futures):
                    keep(*future.result())
            except BaseException as e:
                for future in futures:
                    future.cancel()
                if not isinstance(e, SteerError):
                    close_workers()  # Ctrl-C reached the workers too, or one died: start afresh next time
                raise
        else:
            with one_thread():  # as in a worker: the run's bytes do not depend on where its cells ran
                for seed in todo:
                    keep(seed, run_cell(plan, session, seed, run.path))
    except BaseException:
        # Ctrl-C, a full disk or a crash: finished cells and their files stay; the manifest says the run
        # stopped, unless it cannot be written either (the original error is the one to report).
        with contextlib.suppress(SteerError):
            run.close("interrupted")
        raise
    done = CellResults(run, [f"seed-{s}" for s in seeds if statuses[s] == "done"])
    skipped = list(CellResults(run, [f"seed-{s}" for s in seeds if statuses[s] != "done"]))  # few: kept parsed
    return done, skipped, reused


def option_files(spec: Spec) -> dict[str, str]:
    """The files a study's options name (a `Path`, e.g. features' `dictionary:`) with their sha256: part of the run's
    identity, so a file changed since the run began is a new run, refused at the start rather than after its cells."""
    paths = [getattr(spec.options, f.name) for f in fields(spec.options)]
    # An option that is a record naming files (discover's `features: {file, ...}`, retarget's `feature: {file,
    # ...}`) lists them in `FILES`.
    paths += [getattr(v, name) for v in list(paths) for name in getattr(v, "FILES", ())]
    return {str(p): sha256_file(p) for p in paths if isinstance(p, Path) and p.is_file()}


def run_study(
    study: Study,
    spec: Spec,
    session: Session,
    out: Path,
    on_cell: OnCell | None = None,
    force: bool = False,
    workers: int | None = 1,
    plan: Plan | None = None,
    executor: str = "local",
    address: str | None = None,
) -> dict[str, Any]:
    """Run one study on one spec into `out`; returns the report it wrote (metrics.json for most studies).

    `plan`: the study's plan for this spec and session when the caller made it already (batch plans every
    experiment before running any). `executor`: "local" (this process, or `workers` processes) or "ray"
    (Ray tasks, on the cluster at `address` or a local Ray instance); the results are byte-identical.
    """
    study.validate(spec)
    check_seed_modes(spec, session.mode)
    check_executor(executor, address)
    if plan is None:
        plan = study.plan(spec, session)  # vectors resolve here: a bad file or source seed leaves no folder behind
    inputs = vector_inputs(session, spec)
    prov = {**provenance(session, plan.layer), "inputs": inputs}
    seeds = study.cells(spec)
    identity = run_identity(
        study.name,
        spec.identity(keep_seeds=not study.grows),
        session.checkpoint.sha256,
        session.mode,
        {i["path"]: i["sha256"] for i in inputs} | option_files(spec),
    )
    run = RunFolder.open(Path(out), study.name, spec.raw, [f"seed-{s}" for s in seeds], prov, force, identity)
    if study.stages is not None:
        # Earlier stages run into subfolders of this run, each a run folder of its own; their results choose the
        # final stage's plan (deterministically: the run's identity stays the spec's).
        def run_stage(stage: Study, stage_spec: Spec, folder: str) -> dict[str, Any]:
            report = run_study(
                stage, stage_spec, session, run.path / folder, on_cell, force, workers, None, executor, address
            )
            # The stage's folder beside its report, for a later step that reads the stage's files (the features
            # dictionary is fitted from its corpus stage's activations); not written into the stage's report.
            return {**report, STAGE_FOLDER: str(run.path / folder)}

        try:
            plan = study.stages(plan, session, run_stage)
        except BaseException:
            with contextlib.suppress(SteerError):
                run.close("interrupted")
            raise
    done, skipped, reused = run_cells(run, seeds, plan, session, on_cell, workers, executor, address)
    report = _write_report(run, study, spec, plan, session, done, skipped, reused, prov, seeds)
    if not done and skipped:
        first = skipped[0]
        raise SteerError(
            f"seeds: every one of the {len(skipped)} mazes was skipped (seed {first['seed']}: {first['reason']}). "
            f"{run.path / study.report_name} lists each reason; choose seeds where the vector can be built."
        )
    return report


def _write_report(
    run: RunFolder,
    study: Study,
    spec: Spec,
    plan: Plan,
    session: Session,
    done: CellResults,
    skipped: list[dict[str, Any]],
    reused: int,
    prov: dict[str, Any],
    seeds: tuple[int, ...],
) -> dict[str, Any]:
    """The study's report from the finished cells: its figures and files, the report JSON (the run marked
    complete) and the run's page."""
    built = study.report(plan, session, spec, done, skipped)
    files = run.cell_files()  # one pass over the records, for the report's figure list and for its page
    cell_figures = [f for s in seeds for f in files.get(f"seed-{s}", []) if f.endswith((".png", ".gif"))]
    # Each figure as PNG (the page shows it), and a chart also in the spec's other formats (`figures:`).
    written = [
        name for key, image in built.figures.items() for name in save_figure(image, run.path / key, spec.figures)
    ]
    for name, data in built.files.items():
        atomic_write_bytes(run.path / name, data)
    tables = _write_tables(run.path, study, Finished(plan, spec, done, built.body, run.path))
    report = {
        "command": study.name,
        "spec": spec.raw,
        "provenance": prov,
        "skipped": skipped,
        "reused_cells": reused,
        **_plain(built.body),
        "figures": [*cell_figures, *built.figures],
    }
    run.complete(report, name=study.report_name, figures=[*written, *built.files, *tables])
    from steer.report.html import write_report_html  # the parent's alone: a worker never imports the pages' stack

    run.add_report(write_report_html(run.path, study.help, run.page_manifest(files)).name)
    return report


def _write_tables(folder: Path, study: Study, finished: Finished) -> list[str]:
    """The study's tables from the finished cells (each row made as it is written), in CSV and, when pyarrow is
    importable, Parquet; then tables.json, their columns for readers (written for a study with no tables too, so
    that a folder without one is a run from before tables). Returns the files written. Written from the cells'
    records alone, so a resumed run writes the same bytes, wherever its cells ran."""
    parquet = parquet_available()
    names = []
    for t in study.tables:
        rows = partial(t.rows, finished)
        atomic_write_bytes(folder / t.table.csv, csv_writer(t.table, rows))
        names.append(t.table.csv)
        if parquet:
            atomic_write_bytes(folder / t.table.parquet, parquet_writer(t.table, rows))
            names.append(t.table.parquet)
    atomic_write_bytes(folder / SCHEMA, schema([t.table for t in study.tables], parquet))
    return [*names, SCHEMA]
