"""Exact behaviour (steer.analysis.chain) against real sampled episodes (steer.analysis.episodes), and what each costs.

For each maze, original and patched (the maze's own cheese vector x -1 at block2.res1.resadd_out), it prints
the exact P(reach the cheese), P(visit the inner top-right square), mean steps to the cheese and mean episode
length next to the empirical values of N sampled episodes with their 99% intervals (Clopper-Pearson for
probabilities, Student t for means; when every sample is equal, the bound the binomial interval puts on the
mean), and whether the exact value lies inside. With ~100 checks at 99%, about
one is expected to fall outside by chance.

Then it times the exact computation on 100 easy mazes against sampling 1,000 episodes per maze (estimated
from the per-episode cost measured in the check). Writes outputs/behaviour-check/check.json.

    PYTHONPATH=. python benchmarks/behaviour_check.py [--easy 10] [--hard 5] [--episodes 400]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import scipy.stats
import torch

from steer.analysis.chain import Behaviour, behaviour
from steer.analysis.episodes import Episodes, sample_episodes
from steer.io import atomic_write_json
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import facing_fields, facing_inputs

LAYER = "block2.res1.resadd_out"
OUT = Path("outputs/behaviour-check")
CONFIDENCE = 0.99
SLACK = 1e-9  # exact values carry float64 rounding; an interval ending exactly at 0, 1 or 500 must still hold them


def binomial_row(name: str, exact: float, successes: int, n: int) -> dict[str, Any]:
    ci = scipy.stats.binomtest(successes, n).proportion_ci(CONFIDENCE)
    return {
        "stat": name,
        "exact": exact,
        "empirical": successes / n,
        "low": ci.low,
        "high": ci.high,
        "agrees": bool(ci.low - SLACK <= exact <= ci.high + SLACK),
    }


def mean_row(name: str, exact: float | None, samples: np.ndarray, horizon: int) -> dict[str, Any] | None:
    if exact is None or len(samples) < 2:
        return None  # no interval from fewer than two samples
    mean = float(samples.mean())
    if samples.std() == 0:
        # Every sample is the same v, so a t-interval has no width. None of n samples differs from v, so
        # P(an episode differs) <= p (its binomial bound); episodes last 1..horizon steps, so the mean lies
        # in [v - p (v - 1), v + p (horizon - v)].
        p = scipy.stats.binomtest(0, len(samples)).proportion_ci(CONFIDENCE).high
        low, high = mean - p * (mean - 1), mean + p * (horizon - mean)
    else:
        ci = scipy.stats.ttest_1samp(samples, exact).confidence_interval(CONFIDENCE)
        low, high = float(ci.low), float(ci.high)
    return {
        "stat": name,
        "exact": exact,
        "empirical": mean,
        "low": low,
        "high": high,
        "agrees": bool(low - SLACK <= exact <= high + SLACK),
    }


def compare(b: Behaviour, eps: Episodes) -> list[dict[str, Any]]:
    reached = eps.reached
    top_right = sum(e.visited(eps.maze.top_right_square) for e in eps.episodes)
    rows = [
        binomial_row("P(cheese)", b.p_cheese, int(reached.sum()), eps.n),
        binomial_row("P(top-right)", b.p_top_right, int(top_right), eps.n),
        mean_row("steps|cheese", b.steps_to_cheese, eps.steps[reached].astype(float), b.horizon),
        mean_row("episode steps", b.mean_steps, eps.steps.astype(float), b.horizon),
    ]
    return [r for r in rows if r is not None]


def check(policy: Any, mode: str, seeds: list[int], episodes: int) -> tuple[list[dict[str, Any]], list[dict]]:
    renderer = MazeRenderer(mode)
    rows, costs = [], []
    for seed in seeds:
        maze = renderer.level(seed)
        vec = compute_vector(policy, renderer, maze, PairSpec("cheese"), LAYER)
        patch_sets = [[], [(vec.layer, vec.tensor, -1.0)]]
        fields = facing_fields(policy, facing_inputs(renderer, maze), patch_sets)
        for label, field, patches in zip(("original", "patched"), fields, patch_sets, strict=True):
            b = behaviour(field)
            start = time.perf_counter()
            eps = sample_episodes(policy, maze, episodes, seed=seed, patches=patches, prefill=renderer)
            seconds = time.perf_counter() - start
            costs.append(
                {
                    "mode": mode,
                    "seed": seed,
                    "config": label,
                    "seconds": seconds,
                    "episodes": eps.n,
                    "env_steps": int(eps.steps.sum()),
                }
            )
            for row in compare(b, eps):
                rows.append(
                    {
                        "mode": mode,
                        "seed": seed,
                        "maze_dim": maze.maze_dim,
                        "config": label,
                        "frames_not_rendered": eps.frames_computed,
                        **row,
                    }
                )
                print(format_row(rows[-1]), flush=True)
    return rows, costs


def format_row(r: dict[str, Any]) -> str:
    mark = "ok " if r["agrees"] else "OUT"
    return (
        f"{r['mode']:<4} seed {r['seed']:>3} ({r['maze_dim']:>2}x{r['maze_dim']:<2}) {r['config']:<8} "
        f"{r['stat']:<13} exact {r['exact']:9.4f}  sampled {r['empirical']:9.4f}  "
        f"99% [{r['low']:9.4f}, {r['high']:9.4f}]  {mark}"
    )


def time_exact(policy: Any, n_mazes: int) -> dict[str, float]:
    """Seconds per easy maze for the exact original + patched behaviour, split into its parts."""
    renderer = MazeRenderer("easy")
    parts: dict[str, list[float]] = {"vector": [], "render": [], "forward": [], "chain": []}
    for seed in range(n_mazes):
        maze = renderer.level(seed)
        t0 = time.perf_counter()
        vec = compute_vector(policy, renderer, maze, PairSpec("cheese"), LAYER)
        t1 = time.perf_counter()
        inputs = facing_inputs(renderer, maze)
        t2 = time.perf_counter()
        fields = facing_fields(policy, inputs, [[], [(vec.layer, vec.tensor, -1.0)]])
        t3 = time.perf_counter()
        for field in fields:
            behaviour(field)
        t4 = time.perf_counter()
        for key, dt in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[key].append(dt)
    return {key: statistics.fmean(v) for key, v in parts.items()} | {
        "chain_median": statistics.median(parts["chain"]) / 2,
        "chain_max": max(parts["chain"]) / 2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--easy", type=int, default=10, help="easy mazes (seeds 0..N-1)")
    parser.add_argument("--hard", type=int, default=5, help="hard mazes (seeds 0..N-1)")
    parser.add_argument("--episodes", type=int, default=400)
    parser.add_argument("--timing-mazes", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    policy = checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy

    print(
        f"Exact vs sampled ({args.episodes} episodes each), {CONFIDENCE:.0%} intervals; "
        f"patched = own cheese vector x -1 at {LAYER}"
    )
    rows, costs = [], []
    for mode, n in (("easy", args.easy), ("hard", args.hard)):
        r, c = check(policy, mode, list(range(n)), args.episodes)
        rows += r
        costs += c
    agree = sum(r["agrees"] for r in rows)
    unrendered = sum(r["frames_not_rendered"] for r in rows)
    print(
        f"\n{agree} of {len(rows)} checks agree at {CONFIDENCE:.0%}; frames the game showed that were not a "
        f"rendered (square, facing) frame: {unrendered}"
    )
    for r in rows:
        if not r["agrees"]:
            print("outside:", format_row(r))

    print(f"\nTiming on {args.timing_mazes} easy mazes (torch threads: {args.threads}), original + patched per maze:")
    exact = time_exact(policy, args.timing_mazes)
    per_maze = exact["render"] + exact["forward"] + exact["chain"]
    print(
        f"  exact: {per_maze * 1000:.0f} ms a maze (render both facings {exact['render'] * 1000:.0f} ms, "
        f"forward {exact['forward'] * 1000:.0f} ms, chain DP {exact['chain'] * 1000:.1f} ms for both: median "
        f"{exact['chain_median'] * 1000:.1f} ms, max {exact['chain_max'] * 1000:.1f} ms each); "
        f"{args.timing_mazes} mazes: {per_maze * args.timing_mazes:.1f} s "
        f"(+ {exact['vector'] * 1000:.0f} ms a maze for the vector, needed either way)"
    )
    easy_costs = [c for c in costs if c["mode"] == "easy"]
    per_episode = {
        cfg: sum(c["seconds"] for c in easy_costs if c["config"] == cfg)
        / sum(c["episodes"] for c in easy_costs if c["config"] == cfg)
        for cfg in ("original", "patched")
    }
    sampled = 1000 * (per_episode["original"] + per_episode["patched"])
    print(
        f"  sampling 1,000 episodes a config (estimated from the {args.easy} easy mazes above: "
        f"{per_episode['original'] * 1000:.1f} ms an original episode, {per_episode['patched'] * 1000:.1f} ms a "
        f"patched one): {sampled:.0f} s a maze; {args.timing_mazes} mazes: {sampled * args.timing_mazes:.0f} s "
        f"({sampled * args.timing_mazes / 3600:.1f} h)"
    )
    print(f"  ratio: sampling / exact = {sampled / per_maze:.0f}x")
    OUT.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        OUT / "check.json",
        {
            "rows": rows,
            "sampling_costs": costs,
            "exact_timing": exact,
            "episodes": args.episodes,
            "threads": args.threads,
        },
    )
    print(f"\nWrote {OUT / 'check.json'}")


if __name__ == "__main__":
    main()
