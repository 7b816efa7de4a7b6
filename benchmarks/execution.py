"""Which way the network runs here, where the time goes, and the old path against the new one in one run.

- `steer tune` on this machine: the compiled units built (once), checked bit for bit against eager, and timed;
- each unit's achieved GFLOP/s, eager and compiled, on one thread (torch's FLOP counter, batches of 64);
- the fixed cost of a worker process, split into its imports, procgen's start and the checkpoint;
- the fields and the statistic on the eager path and on the chosen one, side by side, with their shares of the
  physical bound, and the statistic's time split into level generation, rendering, prefix, suffix and metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from shared_machine import cheese_statistic, statistic_with_workers, warm
from timing import timed
from torch.utils.flop_counter import FlopCounterMode

from steer.maze.env import MazeRenderer
from steer.net import compiled
from steer.net.policy import ImpalaPolicy
from steer.net.vfield import BATCH_SIZE, FieldInputs, vector_field
from steer.run.cores import one_thread
from steer.run.runner import close_workers, default_workers
from steer.run.session import Session
from steer.run.tuning import field_observations, tune_here

LAYER = "block2.res1.resadd_out"


@contextmanager
def path(policy: ImpalaPolicy, which: str) -> Iterator[None]:
    """Run the block with the network on `which` path ("eager" or "compiled"), here and in new worker processes."""
    before = os.environ.get(compiled.EXECUTION_ENV)
    os.environ[compiled.EXECUTION_ENV] = which  # spawned workers read it when they load the checkpoint
    close_workers()
    compiled.attach(policy)
    try:
        yield
    finally:
        close_workers()
        if before is None:
            os.environ.pop(compiled.EXECUTION_ENV, None)
        else:
            os.environ[compiled.EXECUTION_ENV] = before
        compiled.attach(policy)


def unit_rates(policy: ImpalaPolicy, repeats: int = 7) -> list[dict[str, Any]]:
    """Per unit: MFLOP per observation and GFLOP/s eager and compiled, on one thread, the hard maze in batches of 64."""
    obs = field_observations("hard", 100)[:BATCH_SIZE]
    units = compiled.units(policy)
    with torch.inference_mode(), one_thread():
        env = policy.run({"input": obs})
        rows = []
        saved = policy.fused_units
        for unit, fused in zip(units, saved or [None] * len(units), strict=True):
            first = policy.site_index(unit.first)
            last = policy.site_index(unit.outputs[-1])
            sites = policy.sites[first : last + 1]

            def eager(sites: list = sites) -> None:
                values = dict(env)
                for s in sites:
                    values[s.name] = s.fn(*(values[i] for i in s.inputs))

            with FlopCounterMode(display=False) as counter:
                eager()
            flops = counter.get_total_flops()
            t_eager = timed(eager, repeats)
            row = {
                "unit": f"{unit.first}..{unit.outputs[-1]}",
                "mflop_per_obs": flops / len(obs) / 1e6,
                "eager_gflops": flops / t_eager / 1e9,
            }
            if fused is not None:
                row["compiled_gflops"] = flops / timed(lambda f=fused, x=env[unit.input]: f.fn(x), repeats) / 1e9
            rows.append(row)
    return rows


_START = """
import json, time
t = [time.perf_counter()]
import torch; t.append(time.perf_counter())
import steer.run.runner, steer.studies; t.append(time.perf_counter())  # what a worker imports for its cells
from steer.maze.env import MazeRenderer
MazeRenderer("easy", threads=1); t.append(time.perf_counter())
from steer.net import checkpoints
checkpoints.load(); t.append(time.perf_counter())
names = ["import torch", "import steer's runner and studies", "procgen's first environment", "the checkpoint"]
print(json.dumps({n: b - a for n, a, b in zip(names, t, t[1:])}))
"""


def start_costs() -> dict[str, float]:
    """What a new worker process spends before its first cell, measured in a fresh interpreter."""
    done = subprocess.run([sys.executable, "-c", _START], capture_output=True, text=True, check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def statistic_phases(session: Session, seeds: range) -> dict[str, float]:
    """The statistic's seconds in one process on one thread, split where they go."""
    phases: dict[str, float] = {}
    with one_thread():
        cheese_statistic(session.policy, session.renderer, seeds, phases)
    return phases


def side_by_side(session: Session, bounds: dict[str, float], repeats: int) -> dict[str, Any]:
    """Fresh fields on one thread and the 100-seed statistic with the default workers, eager and chosen."""
    chosen = "compiled" if session.policy.fused_units else "eager"
    out: dict[str, Any] = {"chosen": chosen, "paths": {}}
    fields = {"field_hard_25x25": ("hard", 100), "field_easy_15x15": ("easy", 28)}
    renderers = {mode: MazeRenderer(mode) for mode in ("easy", "hard")}
    levels = {name: renderers[mode].level(seed) for name, (mode, seed) in fields.items()}
    cores = default_workers()
    for which in dict.fromkeys(("eager", chosen)):
        with path(session.policy, which):
            row: dict[str, Any] = {}
            with one_thread():
                for name, (mode, _) in fields.items():
                    maze = levels[name]
                    row[f"{name}_one_thread_s"] = timed(
                        lambda r=renderers[mode], m=maze: vector_field(session.policy, FieldInputs.render(r, m)),
                        repeats,
                    )
            row["worker_start_s"] = warm(session, cores)
            row["statistic_workers_s"] = timed(lambda: statistic_with_workers(session, range(100), cores), 1)
            row["statistic_phases_one_thread_s"] = statistic_phases(session, range(100))
            out["paths"][which] = row
    share = {}
    for which, row in out["paths"].items():
        share[which] = {
            "statistic_workers": bounds["cheese_statistic_100_seeds"] / row["statistic_workers_s"],
            # one thread: the bound on one core is the all-core bound times the cores
            "field_hard_25x25_one_thread": bounds["field_hard_25x25_original"]
            * default_workers()
            / row["field_hard_25x25_one_thread_s"],
            "field_easy_15x15_one_thread": bounds["field_easy_15x15_original"]
            * default_workers()
            / row["field_easy_15x15_one_thread_s"],
        }
    out["share_of_bound"] = share
    return out


def tune_figures(policy: ImpalaPolicy) -> dict[str, Any]:
    start = time.perf_counter()
    choice = tune_here(policy, log=lambda line: print(f"  {line}", flush=True))
    return {**choice.to_json(), "seconds": time.perf_counter() - start, "runs": compiled.describe(policy)}


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Table rows for the execution path, the units, start costs and the two paths side by side."""
    if "execution" not in r:
        return []
    e = r["execution"]
    out = [
        (
            "steer tune: network path chosen here",
            e["path"],
            f"{e['why']}; eager {e['eager_gflops']:.0f}, compiled {e['compiled_gflops']:.0f} GFLOP/s on one thread",
        )
    ]
    for u in r.get("unit_rates", []):
        compiled_rate = f", compiled {u['compiled_gflops']:.0f}" if "compiled_gflops" in u else ""
        out.append(
            (
                f"  unit {u['unit']}",
                f"{u['mflop_per_obs']:.1f} MFLOP",
                f"eager {u['eager_gflops']:.0f}{compiled_rate} GFLOP/s",
            )
        )
    for name, seconds in r.get("start_costs_s", {}).items():
        out.append((f"  worker start: {name}", f"{seconds:.2f} s", ""))
    s = r.get("paths_side_by_side")
    if s:
        for which, row in s["paths"].items():
            share = s["share_of_bound"][which]
            out.append(
                (
                    f"{which} path: statistic, seeds 0-99, default workers",
                    f"{row['statistic_workers_s']:.2f} s",
                    f"{share['statistic_workers']:.0%} of the bound (workers started in {row['worker_start_s']:.2f} s)",
                )
            )
            for name in ("field_hard_25x25", "field_easy_15x15"):
                out.append(
                    (
                        f"{which} path: {name}, fresh field, one thread",
                        f"{row[f'{name}_one_thread_s']:.3f} s",
                        f"{share[f'{name}_one_thread']:.0%} of the one-core bound",
                    )
                )
            for phase, seconds in row["statistic_phases_one_thread_s"].items():
                out.append((f"  {which}: statistic on one thread, {phase}", f"{seconds:.2f} s", ""))
    return out
