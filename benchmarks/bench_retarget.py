"""The cost of a retargetability map: every open square of a full 15x15 maze as a target, both facings, exact.

`make bench` runs this beside its other figures; alone: `python benchmarks/bench_retarget.py` (the torch
thread count follows the usable cores, as in bench.py). Easy seed 28 is a full 15x15 maze (127 open squares,
126 targets once the cheese is removed). Timed, each from the maze alone (nothing cached between runs):

- the intervention map: render both facings of every square once, the prefix once, one patched suffix pass per
  target (targets batched through the suffix), one chain per target and one pass of the horizon for all;
- the no-intervention map: one field and one chain, every target in one pass of the horizon;
- the cheese-moved reference: the cheese on each target changes the input, so every target renders and runs
  all squares in both facings through the whole network.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from timing import timed

from steer.analysis.chain import build_chain, reach
from steer.analysis.retarget import patches_for
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.net.retarget import pixel_fields
from steer.net.vfield import facing_fields, facing_inputs
from steer.run.cores import machine

LAYER = "block2.res1.resadd_out"
SEED = 28


def retarget_figures(ck: checkpoints.Checkpoint, repeats: int) -> dict[str, Any]:
    renderer = MazeRenderer("easy")
    maze = renderer.level(SEED).without_cheese()
    targets = [sq for sq in maze.open_squares() if sq != maze.mouse]
    policy = ck.policy

    def intervention() -> float:
        inputs = facing_inputs(renderer, maze)
        fields = pixel_fields(policy, inputs, patches_for(maze, targets, LAYER, 16, (10, 27), 5.5))
        return float(reach([build_chain(f) for f in fields], targets).p.mean())

    def none() -> float:
        (field,) = facing_fields(policy, facing_inputs(renderer, maze), [()])
        return float(reach(build_chain(field), targets).p.mean())

    def cheese_moved() -> float:
        total = 0.0
        for t in targets:
            moved = maze.with_cheese(t)
            (field,) = facing_fields(policy, facing_inputs(renderer, moved), [()])
            total += float(reach(build_chain(field), [t]).p[0])
        return total / len(targets)

    few = max(1, repeats // 2)
    return {
        "seed": SEED,
        "squares": len(maze.open_squares()),
        "targets": len(targets),
        "threads": torch.get_num_threads(),
        "intervention_map_s": timed(intervention, repeats),
        "none_map_s": timed(none, repeats),
        "cheese_moved_map_s": timed(cheese_moved, few),
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    what = f"15x15 maze (easy seed {r['seed']}, {r['targets']} targets, both facings)"
    return [
        (
            f"retargetability map, intervention, {what}",
            f"{r['intervention_map_s']:.2f} s",
            "render + prefix once, a patched suffix per target, exact reach of all; goal <= 10 s",
        ),
        ("  no-intervention map, same maze", f"{r['none_map_s']:.2f} s", "one field, one chain"),
        (
            "  cheese-moved reference map, same maze",
            f"{r['cheese_moved_map_s']:.2f} s",
            f"{r['cheese_moved_map_s'] / r['intervention_map_s']:.1f}x the intervention: the input changes per target",
        ),
    ]


if __name__ == "__main__":
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    result = retarget_figures(checkpoints.load(), int(os.environ.get("BENCH_REPEATS", "5")))
    m = machine()
    print(f"on {m['cpu']}, {torch.get_num_threads()} torch threads: {result}")
    for a, b, c in rows(result):
        print(f"  {a}  {b:>9}  {c}")
