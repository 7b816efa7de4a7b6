"""`steer tune`: try the compiled units on this machine, check them against eager, and keep the faster exact path.

The choice is made once per machine (torch version, CPU, ISA) and read by every later load of a checkpoint,
in every process (`steer.net.compiled.attach`), so a run's workers, its resumption and a batch's experiments
all take the same path. Observations come from real mazes of both modes: a full 25x25 hard maze is the timed
workload, and an easy one joins the exactness check.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from steer.maze.env import MazeRenderer
from steer.net import compiled
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.vfield import DEFAULT_SITE
from steer.run.allocator import keep_freed_memory
from steer.run.cores import usable_cores

# Full mazes: hard seed 100 is a 25x25 maze (337 squares), easy seed 28 a 15x15 one (126 squares).
MAZES = (("hard", 100), ("easy", 28))


def field_observations(mode: str, seed: int) -> torch.Tensor:
    """Every open square's observation of one maze, as a vector field renders them."""
    renderer = MazeRenderer(mode)
    maze = renderer.level(seed)
    return obs_to_tensor(renderer.observe_positions(maze, maze.open_squares()))


def flops_per_observation(policy: ImpalaPolicy) -> float:
    """The network's FLOPs for one observation (torch's counter: convolutions and matrix products)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        policy.run({"input": torch.zeros(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)})
    return float(counter.get_total_flops())


def tune_here(policy: ImpalaPolicy, log: Callable[[str], None] = print) -> compiled.Choice:
    """Build, check and time the compiled units for `policy`'s shapes; record and return the choice."""
    keep_freed_memory()  # as every command runs: eager allocates far more than the units and would look slower
    observations = [field_observations(mode, seed) for mode, seed in MAZES]
    return compiled.tune(
        policy, observations, DEFAULT_SITE, flops_per_observation(policy), log=log, workers=usable_cores()
    )
