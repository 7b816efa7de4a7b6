"""The Ray executor's cost against the local one: the same small batch run both ways, in cells per second.

`make bench` runs this after its other figures (skipped, with a note, when the `ray` extra is missing); alone:
`python benchmarks/bench_ray.py`. The batch is two apply experiments (the cheese vector at -1 and +1) on
seeds 0-19 each, 40 cells. Measured, each into a fresh folder:

- local, one process, and local with one worker process per core (`--workers N`);
- Ray on a local instance of N CPUs started for the measurement: the start itself, the batch on fresh Ray
  workers (each loads the checkpoint and builds its procgen environment once), the same batch again on the
  now warm workers, and what one task costs beyond its cells: empty tasks (no seeds) through the same path
  (session and plan cached on the worker), which is the overhead steer's chunks of seeds amortise.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from steer.batch import Batch, Experiment, run_batch
from steer.run import executors
from steer.run.session import open_session
from steer.studies import STUDIES


def _batch(seeds: int) -> Batch:
    apply = STUDIES["apply"]
    return Batch(
        "bench-ray",
        tuple(
            Experiment(
                name,
                "apply",
                apply.parse({"name": name, "seeds": list(range(seeds)), "vector": {"kind": "cheese"}, "coeff": coeff}),
            )
            for name, coeff in (("minus", -1), ("plus", 1))
        ),
    )


def ray_vs_local(seeds: int = 20) -> dict[str, Any]:
    batch = _batch(seeds)
    cells = seeds * len(batch.experiments)
    cpus = os.cpu_count() or 1
    sessions: dict[Any, Any] = {}

    def session(spec: Any) -> Any:  # opened once: the checkpoint load is not what is measured
        return sessions.setdefault(spec.checkpoint, open_session(spec))

    times: dict[str, float] = {}
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:

        def timed(label: str, **kw: Any) -> None:
            start = time.perf_counter()
            run_batch(batch, session, Path(tmp) / label, **kw)
            times[label] = time.perf_counter() - start

        run_batch(_batch(2), session, Path(tmp) / "warm-up")  # this process's environment and first-call costs
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as every worker runs: on a busy machine two OpenMP threads can be several
        try:  # times slower than one, which would flatter the executors
            timed("local_1_process")
        finally:
            torch.set_num_threads(threads)
        timed(f"local_{cpus}_workers", workers=cpus)
        start = time.perf_counter()
        with executors.started("ray", None):
            times["ray_start"] = time.perf_counter() - start
            timed("ray_fresh_workers", executor="ray")
            timed("ray_warm_workers", executor="ray")
            task_ms = _empty_task_ms(next(iter(sessions.values())), batch.experiments[0])
            start = time.perf_counter()
        times["ray_stop"] = time.perf_counter() - start
    per_s = {k: cells / v for k, v in times.items() if not k.startswith(("ray_start", "ray_stop"))}
    one_off = times["ray_start"] + times["ray_fresh_workers"] + times["ray_stop"]
    return {
        "cells": cells,
        "cpus": cpus,
        "load_average": [round(load, 2), round(os.getloadavg()[0], 2)],  # 1-minute, before and after
        "chunk_size": executors.chunk_size(seeds, cpus),
        "seconds": times,
        "cells_per_s": per_s,
        # A one-off `steer batch --executor ray` on a machine with no cluster: start, fresh workers, stop.
        "ray_one_off_cells_per_s": cells / one_off,
        # The warm Ray rate as a share of N independent single-threaded processes at the 1-process rate.
        "ray_warm_efficiency": per_s["ray_warm_workers"] / (cpus * per_s["local_1_process"]),
        "ray_task_overhead_ms": task_ms,
    }


def _empty_task_ms(session: Any, exp: Experiment, tasks: int = 200) -> float:
    """Wall time per task of `tasks` seedless tasks, as many at once as the cluster runs (as a run's are)."""
    ray = executors.import_ray()
    remote = executors._remote(ray)
    checkpoint = executors._checkpoint_ref(ray, session)
    plan = ray.put(STUDIES["apply"].plan(exp.spec, session))
    recipe = session.recipe()
    ray.get([remote.remote(recipe, [checkpoint], [plan], ()) for _ in range(4)])  # plan cached on the workers
    start = time.perf_counter()
    ray.get([remote.remote(recipe, [checkpoint], [plan], ()) for _ in range(tasks)])
    return 1000 * (time.perf_counter() - start) / tasks


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows for bench.py's table."""
    if "skipped" in r:
        return [("Ray executor vs local", "skipped", r["skipped"])]
    sec, rate = r["seconds"], r["cells_per_s"]
    cpus = r["cpus"]
    load = r["load_average"]
    return [
        (f"same batch, {r['cells']} apply cells, {cpus} CPUs, load {load[0]:.1f}-{load[1]:.1f}:", "", ""),
        ("  local, 1 process, 1 thread", f"{sec['local_1_process']:.2f} s", f"{rate['local_1_process']:.2f} cells/s"),
        (
            f"  local, {cpus} single-threaded workers (the default; pool start-up included)",
            f"{sec[f'local_{cpus}_workers']:.2f} s",
            f"{rate[f'local_{cpus}_workers']:.2f} cells/s",
        ),
        ("  ray: start a local instance / stop it", f"{sec['ray_start']:.2f} s", f"stop {sec['ray_stop']:.2f} s"),
        (
            "  ray, fresh workers (first batch)",
            f"{sec['ray_fresh_workers']:.2f} s",
            f"{rate['ray_fresh_workers']:.2f} cells/s; {r['ray_one_off_cells_per_s']:.2f} with start and stop",
        ),
        (
            "  ray, warm workers (same batch again)",
            f"{sec['ray_warm_workers']:.2f} s",
            f"{rate['ray_warm_workers']:.2f} cells/s; {r['ray_warm_efficiency']:.0%} of {cpus} x the 1-process rate",
        ),
        (
            "  ray: one task beyond its cells (warm)",
            f"{r['ray_task_overhead_ms']:.1f} ms",
            f"{r['ray_task_overhead_ms'] * rate['ray_warm_workers'] / (1000 * r['chunk_size']):.1%} of a chunk of "
            f"{r['chunk_size']} cells",
        ),
    ]


if __name__ == "__main__":
    import json

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    result = ray_vs_local()
    print(json.dumps(result, indent=1))
    for a, b, c in rows(result):
        print(f"  {a:<40} {b:>9}  {c}")
