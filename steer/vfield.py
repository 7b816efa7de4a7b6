"""Vector fields: the policy's action distribution with the mouse on every open square of a maze.

Observations are rendered once per maze (`FieldInputs`) and reused for the original and every patched
pass. Probabilities are computed as procgen-tools does (a Categorical over log-softmax logits), so fields
match the published research code to float32 precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from steer.env import MazeRenderer
from steer.hooks import patching
from steer.maze import Maze, Square
from steer.policy import ImpalaPolicy, obs_to_tensor

# Action indices of procgen's 15-way maze action space, by the direction the mouse moves.
LEFT = (0, 1, 2)
DOWN = (3,)
UP = (5,)
RIGHT = (6, 7, 8)
NOOP = (4, 9, 10, 11, 12, 13, 14)
DIRECTIONS: dict[tuple[int, int], tuple[int, ...]] = {(0, -1): LEFT, (-1, 0): DOWN, (1, 0): UP, (0, 1): RIGHT}

Patch = tuple[str, torch.Tensor, float]


def action_probs(logits: torch.Tensor) -> torch.Tensor:
    """Probabilities the way the trained policy samples them: Categorical(logits=log_softmax(logits))."""
    log_probs = F.log_softmax(logits, dim=-1)
    return F.softmax(log_probs - log_probs.logsumexp(dim=-1, keepdim=True), dim=-1)


def direction_prob(probs: np.ndarray, step: tuple[int, int]) -> np.ndarray:
    """P(the mouse moves by `step`), summing the actions that move that way; works on (..., 15)."""
    return probs[..., list(DIRECTIONS[step])].sum(axis=-1)


@dataclass(frozen=True)
class FieldInputs:
    """A maze, the squares its field covers, and their rendered observations (reused across passes)."""

    maze: Maze
    positions: tuple[Square, ...]
    obs: torch.Tensor  # (N, 3, 64, 64) float32

    @classmethod
    def render(cls, renderer: MazeRenderer, maze: Maze, device: torch.device | str = "cpu") -> FieldInputs:
        cheese = maze.cheese
        positions = tuple(sq for sq in maze.open_squares() if sq != cheese)
        frames = renderer.observe_positions(maze, positions)
        return cls(maze, positions, obs_to_tensor(frames, device))


@dataclass(frozen=True)
class VectorField:
    maze: Maze
    positions: tuple[Square, ...]
    probs: np.ndarray  # (N, 15) float32

    @property
    def arrows(self) -> np.ndarray:
        """(N, 2) net movement: x = P(right) - P(left), y = P(up) - P(down)."""
        p = torch.from_numpy(self.probs)
        # float32 group sums in torch, as procgen-tools computes them.
        x = p[:, list(RIGHT)].sum(-1) - p[:, list(LEFT)].sum(-1)
        y = p[:, list(UP)].sum(-1) - p[:, list(DOWN)].sum(-1)
        return torch.stack([x, y], dim=-1).numpy()

    def index(self, square: Square) -> int:
        return self.positions.index(square)

    def to_json(self) -> dict[str, object]:
        return {"probs": self.probs.tolist(), "arrows": self.arrows.tolist()}


def vector_field(
    policy: ImpalaPolicy,
    inputs: FieldInputs,
    patches: Sequence[Patch] = (),
    batch_size: int = 512,
) -> VectorField:
    """The field of `inputs.maze` with `coeff * vector` added at each patch's layer."""
    chunks = []
    with torch.no_grad(), patching(policy, patches) if patches else nullcontext():
        for start in range(0, len(inputs.positions), batch_size):
            logits, _ = policy(inputs.obs[start : start + batch_size])
            chunks.append(action_probs(logits).cpu())
    probs = torch.cat(chunks).numpy() if chunks else np.zeros((0, 15), np.float32)
    return VectorField(inputs.maze, inputs.positions, probs)
