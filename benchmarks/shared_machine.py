"""steer's default executor on this machine, idle and with another process holding one core.

The 100-seed statistic runs here the way `steer apply` runs its cells by default: one single-threaded worker
process per core (`steer.runner.worker_pool`), seeds handed out one at a time. The same workload in one
process with one OpenMP thread per free core (what steer uses for in-process work) is the comparison. The
competing process is a pure-Python busy loop, the shape of a colleague's job on a shared machine.
"""

from __future__ import annotations

import multiprocessing
import pickle
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from steer.cores import use_free_cores
from steer.metrics import maze_metrics, summarize
from steer.runner import _work, default_workers, worker_pool
from steer.session import Session
from steer.study import CellResult
from steer.vectors import PairSpec, compute_vector
from steer.vfield import FieldInputs, vector_fields

LAYER = "block2.res1.resadd_out"


@dataclass(frozen=True)
class StatisticPlan:
    """One cell of the cheese-vector statistic: level, vector, observations, both fields, metrics."""

    layer: str = LAYER

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        maze = session.renderer.level(seed)
        vec = compute_vector(session.policy, session.renderer, maze, PairSpec("cheese"), self.layer)
        inputs = FieldInputs.render(session.renderer, maze)
        original, patched = vector_fields(session.policy, inputs, self.layer, [None, -1.0 * vec.tensor])
        return "done", [], maze_metrics(original, patched)


def statistic_in_process(session: Session, seeds: range) -> dict[str, Any]:
    plan = StatisticPlan()
    return summarize([plan.cell(session, s, Path("."))[2] for s in seeds])


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


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def shared_machine_figures(
    session: Session, field: Callable[[], Any], repeats: int, seeds: range = range(100)
) -> dict[str, Any]:
    """Field and statistic times, idle and beside a busy loop, in-process (threads = cores) and with workers."""
    cores = default_workers()
    started = warm(session, cores)
    before = torch.get_num_threads()
    result: dict[str, Any] = {"cores": cores, "worker_start_s": started}
    for label, busy in (("idle", False), ("busy", True)):
        with busy_core() if busy else _nothing():
            threads = use_free_cores()  # as every steer command does when it starts
            result[label] = {
                "in_process_threads": threads,
                "field_in_process_s": median_time(field, repeats),
                "statistic_in_process_s": median_time(lambda: statistic_in_process(session, seeds), 1),
                "statistic_workers_s": median_time(lambda: statistic_with_workers(session, seeds, cores), 1),
            }
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
            f"shared machine: {s['cores']} single-threaded workers (start-up, once per session)",
            f"{s['worker_start_s']:.2f} s",
            f"in-process threads: {s['idle']['in_process_threads']} idle, {s['busy']['in_process_threads']} busy",
        )
    ]
    for key, label in (
        ("field_in_process_s", "25x25 field, in-process"),
        ("statistic_in_process_s", "statistic, seeds 0-99, in-process"),
        ("statistic_workers_s", "statistic, seeds 0-99, workers (the default)"),
    ):
        idle, busy = s["idle"][key], s["busy"][key]
        rows.append(
            (f"  {label}, one core busy", f"{busy:.2f} s", f"idle {idle:.2f} s: {busy / idle:.2f}x (goal <= 2x)")
        )
    return rows
