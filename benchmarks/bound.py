"""The physical bound of a workload on this machine, to say how close steer comes to it.

A field or statistic must at least (1) run its network FLOPs and (2) have procgen render its frames. The
bound is the sum of the two at this machine's measured rates, with every core busy:

    bound = FLOPs / measured FP32 peak (all cores)  +  frames x measured seconds per frame / cores

The FLOP counts come from torch's own counter (`torch.utils.flop_counter`, convolutions and matrix products;
ReLUs, pooling and adds are memory-bound and counted as free), split at the injection site because steer runs
the prefix once per square and the suffix once per field. The peak is a large float32 matrix product, the best
this CPU sustains from torch; the frame cost is procgen's `set_state` + `observe` on one thread.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.utils.flop_counter import FlopCounterMode

from steer.maze.env import MazeRenderer
from steer.net.policy import ImpalaPolicy


def peak_flops(threads: int, n: int = 2048, repeats: int = 7) -> float:
    """FP32 FLOP/s of an n x n matrix product on `threads` threads (median of `repeats`, after a warm-up)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        torch.mm(a, b, out=out)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(4):
                torch.mm(a, b, out=out)
            times.append((time.perf_counter() - start) / 4)
        return 2 * n**3 / statistics.median(times)
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class NetworkFlops:
    """FLOPs per observation: the whole network, and its split at an injection site."""

    site: str
    total: float
    prefix: float  # input through `site`
    suffix: float  # after `site` to the action logits and value


def network_flops(policy: ImpalaPolicy, site: str) -> NetworkFlops:
    obs = torch.zeros(1, 3, 64, 64)
    with torch.inference_mode():
        with FlopCounterMode(display=False) as whole:
            policy.run({"input": obs})
        with FlopCounterMode(display=False) as head:
            values = policy.run({"input": obs}, stop=policy.resolve(site))
    total, prefix = float(whole.get_total_flops()), float(head.get_total_flops())
    del values
    return NetworkFlops(site, total, prefix, total - prefix)


def seconds_per_frame(mode: str = "easy", seed: int = 28, repeats: int = 5) -> float:
    """procgen's cost of one observation (set the state, render) on one thread; median over `repeats` mazes."""
    renderer = MazeRenderer(mode, threads=1)
    maze = renderer.level(seed)
    squares = maze.open_squares()
    renderer.observe_positions(maze, squares)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        renderer.observe_positions(maze, squares)
        times.append((time.perf_counter() - start) / len(squares))
    return statistics.median(times)


@dataclass(frozen=True)
class Bound:
    """The least time a workload can take here, and the two terms it is made of."""

    network_s: float
    render_s: float

    @property
    def seconds(self) -> float:
        return self.network_s + self.render_s


def bound(flops: float, frames: int, peak: float, frame_s: float, cores: int) -> Bound:
    return Bound(flops / peak, frames * frame_s / cores)


def physical_figures(
    policy: ImpalaPolicy, site: str, cores: int, field_squares: dict[str, int], stat_squares: int, mazes: int
) -> dict[str, object]:
    """The measured rates and, per workload, its bound in seconds (see the module's docstring)."""
    peak, frame_s = peak_flops(cores), seconds_per_frame()
    net = network_flops(policy, site)
    bounds: dict[str, float] = {}
    for name, n in field_squares.items():
        bounds[f"{name}_original"] = bound(n * net.total, n, peak, frame_s, cores).seconds
        bounds[f"{name}_patched"] = bound(n * net.suffix, 0, peak, frame_s, cores).seconds
    # The statistic: per square the prefix once and the suffix twice (original and patched); per maze the
    # vector's two observations through the prefix.
    flops = stat_squares * (net.prefix + 2 * net.suffix) + mazes * 2 * net.prefix
    stat = bound(flops, stat_squares + 2 * mazes, peak, frame_s, cores)
    bounds["cheese_statistic_100_seeds"] = stat.seconds
    return {
        "cores": cores,
        "site": site,
        "peak_gflops": peak / 1e9,
        "seconds_per_frame": frame_s,
        "network_mflops": {"total": net.total / 1e6, "prefix": net.prefix / 1e6, "suffix": net.suffix / 1e6},
        "statistic_network_s": stat.network_s,
        "statistic_render_s": stat.render_s,
        "bound_s": bounds,
    }


def bound_rows(r: dict) -> list[tuple[str, str, str]]:
    """Table rows: each workload's bound and the fraction of it steer reaches (bound / measured time)."""
    if "physical" not in r:
        return []
    p = r["physical"]
    b = p["bound_s"]
    flops = p["network_mflops"]
    rows = [
        (
            f"physical bound here: FP32 peak ({p['cores']} cores), procgen frame",
            f"{p['peak_gflops']:.0f} GFLOP/s",
            f"{1e6 * p['seconds_per_frame']:.0f} us/frame on one core; network {flops['total']:.1f} MFLOP "
            f"({flops['prefix']:.1f} to {p['site']}, {flops['suffix']:.1f} after)",
        )
    ]
    measured = {
        "field_hard_25x25_original": r["field_hard_25x25"]["original_s"],
        "field_hard_25x25_patched": r["field_hard_25x25"]["patched_s"],
        "field_easy_15x15_original": r["field_easy_15x15"]["original_s"],
        "field_easy_15x15_patched": r["field_easy_15x15"]["patched_s"],
        "cheese_statistic_100_seeds": r["cheese_statistic_100_seeds_s"],
    }
    if "shared_machine" in r:
        measured["cheese_statistic_100_seeds (workers)"] = r["shared_machine"]["idle"]["statistic_workers_s"]
        measured["field_hard_25x25_original (one thread)"] = r["shared_machine"]["idle"]["field_one_thread_s"]
    for name, seconds in measured.items():
        least = b[name.split(" ")[0]]
        rows.append(
            (f"  bound: {name}", f"{least:.3f} s", f"steer {seconds:.3f} s: {least / seconds:.0%} of the bound")
        )
    return rows
