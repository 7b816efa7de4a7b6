"""Speed of steer's hot paths, with a naive notebook-style baseline measured in the same process.

Run with `make bench`. Every figure is the median of several timed runs after a warm-up run. Writes
`outputs/bench/bench.json` and prints a table. Timings depend a lot on the machine (between two 2-core AVX-512
CPUs the share of the physical bound differed 2-3x), so both record the CPU model, the ISA torch dispatches to,
the measured peak and the load average; docs/speed.md names the machine of every figure it quotes.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import torch
from bench_behaviour_stats import behaviour_stats_figures
from bench_behaviour_stats import rows as behaviour_stats_rows
from bench_features import features_figures
from bench_features import rows as features_rows
from bench_retarget import retarget_figures
from bench_retarget import rows as retarget_rows
from bench_steerability import rows as steerability_rows
from bench_steerability import steerability_figures
from bound import bound_rows, physical_figures
from execution import rows as execution_rows
from execution import side_by_side, start_costs, tune_figures, unit_rates
from shared_machine import cheese_statistic, shared_machine_figures, shared_rows
from timing import timed

from steer.analysis.chain import behaviour
from steer.analysis.episodes import sample_episodes
from steer.io import atomic_write_json
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.net.reference import ReferencePolicy, reference_field
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import FieldInputs, facing_fields, facing_inputs, vector_field, vector_fields
from steer.run.allocator import keep_freed_memory
from steer.run.cores import load_average, machine, usable_cores
from steer.run.session import Session

LAYER = "block2.res1.resadd_out"
OUT = Path("outputs/bench")


def field_figures(ck: checkpoints.Checkpoint, ref: ReferencePolicy, mode: str, seed: int, repeats: int) -> dict:
    renderer = MazeRenderer(mode)
    maze = renderer.level(seed)
    vec = compute_vector(ck.policy, renderer, maze, PairSpec("cheese"), LAYER)
    patch = [(LAYER, vec.tensor, -1.0)]
    n = len(maze.open_squares()) - 1

    def original() -> FieldInputs:
        inputs = FieldInputs.render(renderer, maze)
        vector_field(ck.policy, inputs)
        return inputs

    inputs = original()
    t_orig = timed(original, repeats)
    t_patched = timed(lambda: vector_field(ck.policy, inputs, patch), repeats)
    naive_patch = ("embedder.block2.res1.resadd", vec.tensor, -1.0)
    t_naive = timed(lambda: reference_field(ref, maze.to_bytes(), mode, naive_patch, batch_size=1), 3)
    return {
        "mode": mode,
        "seed": seed,
        "world_dim": maze.world_dim,
        "maze_dim": maze.maze_dim,
        "squares": n,
        "original_s": t_orig,
        "patched_s": t_patched,
        "squares_per_s_original": n / t_orig,
        "squares_per_s_patched": n / t_patched,
        "naive_patched_s": t_naive,
        "speedup_vs_naive": t_naive / t_patched,
        # A diff needs both fields: the naive way renders and runs the network twice.
        "speedup_vs_naive_original_plus_patched": 2 * t_naive / (t_orig + t_patched),
    }


def coefficient_sweep(ck: checkpoints.Checkpoint, seeds: range, coeffs: list[float]) -> int:
    """Prefix once per maze, suffix per coefficient (FieldInputs memoises the prefix at the patch site)."""
    renderer = MazeRenderer("easy")
    fields = 0
    for seed in seeds:
        maze = renderer.level(seed)
        vec = compute_vector(ck.policy, renderer, maze, PairSpec("cheese"), LAYER)
        inputs = FieldInputs.render(renderer, maze)
        fields += len(vector_fields(ck.policy, inputs, LAYER, [None, *(c * vec.tensor for c in coeffs)])) - 1
    return fields


def naive_workload(ck: checkpoints.Checkpoint, ref: ReferencePolicy, seeds: range, coeffs: list[float]) -> int:
    """The same fields the notebook way: every field re-rendered in its own envs, batch-1 forward passes."""
    renderer = MazeRenderer("easy")
    fields = 0
    for seed in seeds:
        maze = renderer.level(seed)
        vec = compute_vector(ck.policy, renderer, maze, PairSpec("cheese"), LAYER)
        reference_field(ref, maze.to_bytes(), "easy", None, batch_size=1)
        for c in coeffs:
            reference_field(ref, maze.to_bytes(), "easy", ("embedder.block2.res1.resadd", vec.tensor, c), batch_size=1)
            fields += 1
    return fields


def exact_behaviour(ck: checkpoints.Checkpoint, seeds: range) -> int:
    """`steer behaviour`'s work: both facings of every square, original and −cheese, and the exact chains."""
    renderer = MazeRenderer("easy")
    mazes = 0
    for seed in seeds:
        maze = renderer.level(seed)
        vec = compute_vector(ck.policy, renderer, maze, PairSpec("cheese"), LAYER)
        fields = facing_fields(ck.policy, facing_inputs(renderer, maze), [(), [(LAYER, vec.tensor, -1.0)]])
        for f in fields:
            behaviour(f)
        mazes += 1
    return mazes


def sampled_episodes_per_maze_s(ck: checkpoints.Checkpoint, seeds: range, episodes: int) -> float:
    """Seconds to sample `episodes` real episodes per maze (original and −cheese), measured on `seeds`."""
    renderer = MazeRenderer("easy")
    start = time.perf_counter()
    for seed in seeds:
        maze = renderer.level(seed)
        vec = compute_vector(ck.policy, renderer, maze, PairSpec("cheese"), LAYER)
        for patches in ((), [(LAYER, vec.tensor, -1.0)]):
            sample_episodes(ck.policy, maze, episodes, seed, patches, prefill=renderer)
    return (time.perf_counter() - start) / len(seeds)


def dose_response_s(repeats: int) -> dict[str, Any]:
    """`steer dose-response configs/dose-response.yaml` (20 values of t, seeds 0-49, 21 sites and the action
    probabilities) in this process: session, cells, summaries with intervals, figures and files. `force` so that
    no cell of an earlier run is reused."""
    from steer.studies import run_spec

    out = OUT / "dose-response"
    report: dict[str, Any] = {}
    seconds = timed(lambda: report.update(run_spec("dose-response", "configs/dose-response.yaml", out, force=True)),
                    repeats, warm_up=False)  # fmt: skip
    return {"seconds": seconds, "mazes": report["summary"]["mazes"], "ts": len(report["ts"])}


def explorer_latency(ck: checkpoints.Checkpoint, changes: int = 20) -> dict[str, Any]:
    """`steer explore` on a free port: time coefficient changes on a 15x15 maze over HTTP, end to end."""
    import urllib.request

    from steer.explore.app import Explorer, Running

    def post(url: str, coeff: float) -> dict[str, Any]:
        body = {"seed": 28, "coeff": coeff, "vector": {"kind": "cheese"}}
        headers = {"Content-Type": "application/json"}
        with urllib.request.urlopen(
            urllib.request.Request(url + "api/field", json.dumps(body).encode(), headers), timeout=60
        ) as response:
            return json.loads(response.read())

    with Running(Explorer(ck)) as url:
        post(url, -1.0)  # the maze's first view: level, vector, observations, prefix (not a coefficient change)
        post(url, -0.9)  # first suffix pass: kernel selection
        times, server = [], []
        for i in range(changes):
            start = time.perf_counter()
            view = post(url, round(-2 + 4 * i / changes, 2))
            times.append(time.perf_counter() - start)
            server.append(view["timing"]["compute_ms"])
    ms = sorted(1000 * t for t in times)
    return {
        "seed": 28,
        "squares": len(view["positions"]),
        "changes": changes,
        "median_ms": statistics.median(ms),
        "p90_ms": ms[int(0.9 * (len(ms) - 1))],
        "max_ms": ms[-1],
        "server_median_ms": statistics.median(server),
    }


def thread_count_bits(ck: checkpoints.Checkpoint) -> dict[str, Any]:
    """Does a field have the same bits on one torch thread and on two, on this CPU? A measurement, not a promise.

    On the AMD Zen 4 machine where steer began it did; on an Intel Ice Lake the last float32 bit differed. Cells
    run on one thread wherever they run, so a run's bytes never depend on it (docs/reproducibility.md).
    """
    renderer = MazeRenderer("hard")
    inputs = FieldInputs.render(renderer, renderer.level(100))
    before = torch.get_num_threads()
    try:
        fields = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            fields.append(vector_field(ck.policy, inputs).probs)
    finally:
        torch.set_num_threads(before)
    gap = np.abs(fields[0].astype(np.float64) - fields[1])
    return {"identical": bool(np.array_equal(*fields)), "max_abs_difference": float(gap.max()), "squares": len(gap)}


def main() -> None:
    allocator = keep_freed_memory()  # as every steer command does; the naive baseline runs with it too
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    repeats = int(os.environ.get("BENCH_REPEATS", "5"))
    ck = checkpoints.load()
    ref = ReferencePolicy(torch.load(ck.path, map_location="cpu", weights_only=False)["state_dict"])
    results: dict[str, Any] = {
        # Figures differ a lot between CPUs: every one is recorded with the machine it came from.
        "machine": {
            **machine(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "load_average_start": load_average(),
        },
        "checkpoint": ck.provenance(),
        "repeats": repeats,
        "allocator_tuned": allocator,
    }
    # First the network's path on this machine (steer tune: built once, checked against eager, timed); every
    # figure below runs on the path chosen, and `paths_side_by_side` puts the eager one beside it.
    print("steer tune (compiled units: built once per machine, checked bit for bit against eager, timed)", flush=True)
    results["execution"] = tune_figures(ck.policy)
    results["unit_rates"] = unit_rates(ck.policy)
    results["start_costs_s"] = start_costs()
    # Hard seed 100 is a full 25x25 maze (337 squares); easy seed 28 a full 15x15 one (127 squares).
    results["field_hard_25x25"] = field_figures(ck, ref, "hard", 100, repeats)
    results["field_easy_15x15"] = field_figures(ck, ref, "easy", 28, repeats)
    seeds, few = range(100), max(1, repeats // 2)
    easy = MazeRenderer("easy")
    stat: dict[str, Any] = {}
    results["cheese_statistic_100_seeds_s"] = timed(lambda: stat.update(cheese_statistic(ck.policy, easy, seeds)), few)
    medians = {k: stat["p_cheese_ds"][k]["median"] for k in ("original", "patched")}
    results["cheese_statistic_median_p_cheese_ds"] = medians
    phases: dict[str, float] = {}
    cheese_statistic(ck.policy, easy, seeds, phases)
    results["cheese_statistic_phases_s"] = phases
    coeffs = [-3, -2, -1.5, -1, -0.5, 0.5, 1, 1.5, 2, 3]
    results["sweep_10_coeffs_20_seeds_s"] = timed(lambda: coefficient_sweep(ck, range(20), coeffs), few)
    results["exact_behaviour_100_seeds_s"] = timed(lambda: exact_behaviour(ck, seeds), few)
    # Sampling is slow (a patched episode that never finds the cheese runs all 500 steps), so it is measured
    # with 100 episodes on 5 mazes and scaled to 1,000 episodes on 100 mazes: a lower bound on the real cost.
    per_maze = sampled_episodes_per_maze_s(ck, range(5), 100)
    results["sampled_behaviour_1000_episodes_100_seeds_s_estimate"] = per_maze * 10 * 100
    results["explorer_coeff_change_15x15"] = explorer_latency(ck)
    session = Session.from_recipe((str(ck.path.resolve()), "easy", "checkpoint", "cpu", False, ck.sha256))
    hard_renderer = MazeRenderer("hard")
    hard = hard_renderer.level(100)
    results["shared_machine"] = shared_machine_figures(
        session, lambda: vector_field(ck.policy, FieldInputs.render(hard_renderer, hard)), repeats
    )
    renderer = MazeRenderer("easy")
    levels = [renderer.level(s) for s in seeds]
    squares = sum(len(m.open_squares()) - (m.cheese is not None) for m in levels)
    fields = {k: results[k]["squares"] for k in ("field_hard_25x25", "field_easy_15x15")}
    results["physical"] = physical_figures(ck.policy, LAYER, usable_cores(), fields, squares, len(levels))
    results["paths_side_by_side"] = side_by_side(session, results["physical"]["bound_s"], few)
    results["dose_response_20_ts_50_seeds"] = dose_response_s(few)
    results["steerability_100_mazes"] = steerability_figures()
    results["behaviour_stats_1000_mazes"] = behaviour_stats_figures(1000)
    results["retarget_map_easy_15x15"] = retarget_figures(ck, repeats)
    results["features_default_fit"] = features_figures(ck)
    # The naive workloads take ~15 s each, so they get three runs and no warm-up of their own: the naive field
    # benchmarks above already ran the same code.
    slow = int(os.environ.get("BENCH_NAIVE_REPEATS", "3"))
    results["naive_repeats"] = slow
    results["naive_cheese_statistic_100_seeds_s"] = timed(lambda: naive_workload(ck, ref, seeds, [-1.0]), slow, False)
    results["naive_sweep_10_coeffs_20_seeds_s"] = timed(lambda: naive_workload(ck, ref, range(20), coeffs), slow, False)

    # Last: the Ray executor against the local one on a small batch (skipped without the ray extra).
    if find_spec("ray") is None:
        results["ray_vs_local"] = {"skipped": 'ray is not installed (pip install -e ".[ray]")'}
    else:
        from bench_ray import ray_vs_local

        results["ray_vs_local"] = ray_vs_local()

    results["thread_count_bits"] = thread_count_bits(ck)
    results["machine"]["load_average_end"] = load_average()
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(OUT / "bench.json", results)
    print_table(results)


def _load(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}"


def print_table(r: dict[str, Any]) -> None:
    rows = []
    for key, label in (("field_hard_25x25", "25x25 hard maze"), ("field_easy_15x15", "15x15 easy maze")):
        f = r[key]
        rows += [
            (
                f"{label}: vector field, original (render + forward)",
                f"{f['original_s']:.3f} s",
                f"{f['squares_per_s_original']:.0f} squares/s",
            ),
            (
                f"{label}: vector field, patched (observations reused)",
                f"{f['patched_s']:.3f} s",
                f"{f['squares_per_s_patched']:.0f} squares/s",
            ),
            (
                f"{label}: naive baseline, patched (env per square, batch 1)",
                f"{f['naive_patched_s']:.3f} s",
                f"{f['naive_patched_s'] / f['original_s']:.1f}x a fresh steer field, "
                f"{f['speedup_vs_naive']:.0f}x a patched one",
            ),
        ]
    medians = r["cheese_statistic_median_p_cheese_ds"]
    rows.append(
        (
            "cheese-vector statistic, seeds 0-99 (easy)",
            f"{r['cheese_statistic_100_seeds_s']:.2f} s",
            f"median P(cheese|DS) {medians['original']:.3f} -> {medians['patched']:.3f}",
        )
    )
    for phase, seconds in r["cheese_statistic_phases_s"].items():
        rows.append((f"  of which {phase}", f"{seconds:.2f} s", ""))
    rows.append(
        (
            "  naive baseline, same statistic",
            f"{r['naive_cheese_statistic_100_seeds_s']:.2f} s",
            f"steer is {r['naive_cheese_statistic_100_seeds_s'] / r['cheese_statistic_100_seeds_s']:.1f}x faster",
        )
    )
    rows.append(
        (
            "coefficient sweep, 10 coeffs x 20 seeds (easy)",
            f"{r['sweep_10_coeffs_20_seeds_s']:.2f} s",
            "prefix once per maze, suffix per coefficient",
        )
    )
    rows.append(
        (
            "  naive baseline, same sweep",
            f"{r['naive_sweep_10_coeffs_20_seeds_s']:.2f} s",
            f"steer is {r['naive_sweep_10_coeffs_20_seeds_s'] / r['sweep_10_coeffs_20_seeds_s']:.1f}x faster",
        )
    )
    if "exact_behaviour_100_seeds_s" in r:
        exact, field = r["exact_behaviour_100_seeds_s"], r["cheese_statistic_100_seeds_s"]
        sampled = r["sampled_behaviour_1000_episodes_100_seeds_s_estimate"]
        rows.append(
            (
                "exact behaviour, seeds 0-99, original and -cheese (easy)",
                f"{exact:.2f} s",
                f"{exact / field:.1f}x the field statistic (goal <= 2.5x)",
            )
        )
        rows.append(
            (
                "  sampling 1,000 episodes per maze instead (estimate)",
                f"{sampled:.0f} s",
                f"{sampled / exact:.0f}x the exact computation",
            )
        )
    if "explorer_coeff_change_15x15" in r:
        e = r["explorer_coeff_change_15x15"]
        rows.append(
            (
                f"steer explore: coefficient change, 15x15 maze ({e['squares']} squares), HTTP round trip",
                f"{e['median_ms']:.0f} ms",
                f"median of {e['changes']}; p90 {e['p90_ms']:.0f} ms, server "
                f"{e['server_median_ms']:.0f} ms; goal <= 150 ms",
            )
        )
    rows += bound_rows(r) + shared_rows(r) + execution_rows(r)
    if "dose_response_20_ts_50_seeds" in r:
        dose = r["dose_response_20_ts_50_seeds"]
        rows.append(
            (
                f"steer dose-response, {dose['ts']} values of t x seeds 0-49 ({dose['mazes']} mazes), 22 sites",
                f"{dose['seconds']:.1f} s",
                "whole run in process (cells, ~1,300 bootstrap summaries, figures); goal well under a minute",
            )
        )
    if "steerability_100_mazes" in r:
        rows += steerability_rows(r["steerability_100_mazes"])
    if "behaviour_stats_1000_mazes" in r:
        rows += behaviour_stats_rows(r["behaviour_stats_1000_mazes"])
    if "retarget_map_easy_15x15" in r:
        rows += retarget_rows(r["retarget_map_easy_15x15"])
    if "features_default_fit" in r:
        rows += features_rows(r["features_default_fit"])
    bits = r["thread_count_bits"]
    rows.append(
        (
            "same field bits on 1 and 2 torch threads (this CPU)",
            "yes" if bits["identical"] else "no",
            f"largest difference {bits['max_abs_difference']:.1e} (not a promise: docs/reproducibility.md)",
        )
    )
    if "ray_vs_local" in r:
        from bench_ray import rows as ray_rows

        rows += ray_rows(r["ray_vs_local"])
    width = max(len(a) for a, _, _ in rows)
    few = max(1, r["repeats"] // 2)
    m = r["machine"]
    print(
        f"steer benchmarks on {m['cpu']}, {m['cores']} usable cores, torch {m['torch']} dispatching to {m['isa']}, "
        f"load average {_load(m['load_average_start'])} at the start and {_load(m['load_average_end'])} at the end"
    )
    print(
        f"(steer figures: median of "
        f"{r['repeats']} runs after a warm-up ({few} for the statistic and sweep); naive statistic and sweep: "
        f"median of {r['naive_repeats']})"
    )
    for a, b, c in rows:
        print(f"  {a:<{width}}  {b:>9}  {c}")
    print(f"wrote {OUT / 'bench.json'}")


if __name__ == "__main__":
    if sys.argv[1:] == ["explore"]:  # only the explorer's latency: `python benchmarks/bench.py explore`
        keep_freed_memory()
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        print(json.dumps(explorer_latency(checkpoints.load()), indent=1))
    else:
        main()
