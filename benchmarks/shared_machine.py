"""steer's default executor on this machine, idle and with another process holding one core.

The 100-seed statistic runs here the way `steer apply` runs its cells by default: one single-threaded worker
process per core (`steer.run.runner.worker_pool`), seeds handed out one at a time. The same workload in one
process with one OpenMP thread per core (steer's way before) is the comparison. The competing process is a
pure-Python busy loop, the shape of a colleague's job on a shared machine.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from timing import Phases, timed

from steer.analysis.metrics import maze_metrics, summarize
from steer.maze.env import MazeRenderer
from steer.net.policy import ImpalaPolicy
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import BATCH_SIZE, FieldInputs, vector_fields
from steer.run.cores import one_thread
from steer.run.runner import _work, default_workers, worker_pool
from steer.run.session import Session
from steer.run.study import CellResult

LAYER = "block2.res1.resadd_out"


UNTIMED = Phases()  # a clock that records nothing


def statistic_maze(
    policy: ImpalaPolicy, renderer: MazeRenderer, seed: int, clock: Phases = UNTIMED, device: str = "cpu"
) -> dict[str, Any]:
    """One maze of the cheese-vector statistic (`steer apply configs/cheese-vector.yaml`): level, own cheese
    vector, observations, the prefix once, original and patched suffix in one batch, metrics; `clock` times each."""
    with clock("level generation"):
        maze = renderer.level(seed)
    with clock("cheese vector (2 observations)"):
        vec = compute_vector(policy, renderer, maze, PairSpec("cheese"), LAYER)
    with clock("rendering (procgen)"):
        inputs = FieldInputs.render(renderer, maze, device)
    with clock("network prefix"):
        inputs.prefix(policy, policy.resolve(LAYER), BATCH_SIZE)
    with clock("network suffix (original + patched)"):
        original, patched = vector_fields(policy, inputs, LAYER, [None, -1.0 * vec.tensor])
    with clock("metrics"):
        return maze_metrics(original, patched)


def cheese_statistic(
    policy: ImpalaPolicy,
    renderer: MazeRenderer,
    seeds: range,
    phases: dict[str, float] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """The statistic over `seeds` in this process; `phases` collects where the time goes."""
    clock = Phases(phases)
    mazes = [statistic_maze(policy, renderer, seed, clock, device) for seed in seeds]
    with clock("summary (bootstrap intervals)"):
        return summarize(mazes)


@dataclass(frozen=True)
class StatisticPlan:
    """One cell of the cheese-vector statistic: level, vector, observations, both fields, metrics."""

    layer: str = LAYER

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        return "done", [], statistic_maze(session.policy, session.renderer, seed, device=session.device)


def statistic_in_process(session: Session, seeds: range) -> dict[str, Any]:
    return cheese_statistic(session.policy, session.renderer, seeds, device=session.device)


def statistic_with_workers(session: Session, seeds: range, workers: int) -> dict[str, Any]:
    """The same statistic spread over `workers` single-threaded processes (already started: see `warm`)."""
    pool = worker_pool(session.recipe(), workers)
    blob = pickle.dumps(StatisticPlan())
    futures = [pool.submit(_work, blob, Path(".").resolve(), s) for s in seeds]
    by_seed = dict(f.result() for f in as_completed(futures))
    return summarize([by_seed[s][2] for s in seeds])


def warm(session: Session, workers: int) -> float:
    """Start the worker processes and run one cell in each; returns the seconds that took."""
    start = time.perf_counter()
    statistic_with_workers(session, range(workers), workers)
    return time.perf_counter() - start


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_core() -> Iterator[None]:
    """Another process holding one core for as long as the block runs."""
    proc = multiprocessing.get_context("spawn").Process(target=_spin, daemon=True)
    proc.start()
    time.sleep(0.5)  # let it start spinning
    try:
        yield
    finally:
        proc.terminate()
        proc.join()


def shared_machine_figures(
    session: Session, field: Callable[[], Any], repeats: int, seeds: range = range(100)
) -> dict[str, Any]:
    """Field and statistic times, idle and beside a busy loop: steer's way (a lone cell on one thread, several
    cells on one single-threaded worker per core) and the old way (one process, a torch thread per core)."""
    cores = default_workers()
    started = warm(session, cores)
    before = torch.get_num_threads()
    result: dict[str, Any] = {"cores": cores, "worker_start_s": started}
    try:
        for label, busy in (("idle", False), ("busy", True)):
            with busy_core() if busy else _nothing():
                torch.set_num_threads(cores)
                threaded_field = timed(field, repeats)
                threaded_statistic = timed(lambda: statistic_in_process(session, seeds), 1)
                with one_thread():
                    lone_field = timed(field, repeats)
                result[label] = {
                    "field_one_thread_s": lone_field,
                    "field_threads_s": threaded_field,
                    "statistic_threads_s": threaded_statistic,
                    "statistic_workers_s": timed(lambda: statistic_with_workers(session, seeds, cores), 1),
                }
    finally:
        torch.set_num_threads(before)
    return result


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def shared_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows: each workload idle and beside a busy loop, and the slowdown (goal: at most 2x)."""
    if "shared_machine" not in r:
        return []
    s = r["shared_machine"]
    rows = [
        (
            f"shared machine: start {s['cores']} single-threaded workers (once a session)",
            f"{s['worker_start_s']:.2f} s",
            "",
        )
    ]
    for key, label in (
        ("field_one_thread_s", "25x25 field, one thread (steer, one cell)"),
        ("field_threads_s", f"25x25 field, {s['cores']} torch threads (before)"),
        ("statistic_workers_s", "statistic, seeds 0-99, workers (steer's default)"),
        ("statistic_threads_s", f"statistic, seeds 0-99, one process, {s['cores']} threads (before)"),
    ):
        idle, busy = s["idle"][key], s["busy"][key]
        slower = f"idle {idle:.2f} s: {busy / idle:.2f}x (goal <= 2x)"
        rows.append((f"  {label}, one core busy", f"{busy:.2f} s", slower))
    return rows
