"""What a patch did to a maze's vector field, as numbers.

- P(cheese | decision square): probability of the step from the decision square onto the next square of
  the shortest path to the cheese; P(top-right | decision square) the same toward the inner top-right.
- mean_tv: mean over squares of the total-variation distance between the 15-way action distributions.
- p_toward_cheese / p_toward_top_right: mean over squares of the probability of a step that shortens the
  path to that target (the target square itself is left out).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from steer.maze import Maze, Square
from steer.vfield import DIRECTIONS, VectorField, direction_prob


def step_toward(maze: Maze, square: Square, target: Square) -> tuple[int, int] | None:
    path = maze.shortest_path(square, target)
    if path is None or len(path) < 2:
        return None
    return (path[1][0] - square[0], path[1][1] - square[1])


def p_toward(field: VectorField, target: Square | None) -> float | None:
    """Mean over squares of P(a step that brings the mouse closer to `target`)."""
    if target is None:
        return None
    dist = field.maze.distances_to(target)
    steps = list(DIRECTIONS)
    # closer[i, j]: step j from square i lands on a square nearer the target. Squares the target cannot be
    # reached from, and the target itself, are left out.
    rows, closer = [], []
    for i, sq in enumerate(field.positions):
        d = dist.get(sq)
        if d is None or d == 0:
            continue
        rows.append(i)
        closer.append([dist.get((sq[0] + dr, sq[1] + dc), d) < d for dr, dc in steps])
    if not rows:
        return None
    by_step = np.stack([direction_prob(field.probs[rows], step) for step in steps], axis=-1)
    return float(np.mean(np.where(closer, by_step, 0.0).sum(axis=-1)))


def p_step_at(field: VectorField, square: Square | None, target: Square | None) -> float | None:
    if square is None or target is None or square not in field.positions:
        return None
    step = step_toward(field.maze, square, target)
    if step is None:
        return None
    return float(direction_prob(field.probs[field.index(square)], step))


def mean_tv(original: VectorField, patched: VectorField) -> float:
    return float(0.5 * np.abs(original.probs - patched.probs).sum(axis=-1).mean())


def maze_metrics(original: VectorField, patched: VectorField) -> dict[str, Any]:
    maze = original.maze
    ds = maze.decision_square()
    cheese, corner = maze.cheese, maze.top_right_square

    def both(fn: Callable[..., float | None], *args: Any) -> dict[str, float | None]:
        return {"original": fn(original, *args), "patched": fn(patched, *args)}

    return {
        "maze_dim": maze.maze_dim,
        "cheese": list(cheese) if cheese else None,
        "decision_square": list(ds) if ds else None,
        "p_cheese_ds": both(p_step_at, ds, cheese),
        "p_top_right_ds": both(p_step_at, ds, corner),
        "mean_tv": mean_tv(original, patched),
        "p_toward_cheese": both(p_toward, cheese),
        "p_toward_top_right": both(p_toward, corner),
    }


def _stats(values: Sequence[float | None]) -> dict[str, float | int | None]:
    present = [v for v in values if v is not None]
    if not present:
        return {"median": None, "mean": None, "n": 0}
    return {"median": statistics.median(present), "mean": statistics.fmean(present), "n": len(present)}


def summarize(mazes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians and means over mazes; mazes where a metric is undefined (no decision square) are skipped."""
    out: dict[str, Any] = {"mazes": len(mazes)}
    for key in ("p_cheese_ds", "p_top_right_ds", "p_toward_cheese", "p_toward_top_right"):
        out[key] = {side: _stats([m[key][side] for m in mazes]) for side in ("original", "patched")}
    out["mean_tv"] = _stats([m["mean_tv"] for m in mazes])
    out["with_decision_square"] = sum(1 for m in mazes if m["decision_square"] is not None)
    return out
