"""Maze features a linear probe can look for in the activations: one row per (maze, mouse square).

Every feature is a number (NaN where it is undefined, e.g. the decision square of a maze that has none) and
is either *continuous* (probed with ridge regression, scored by R²) or *categorical* (probed with logistic
regression, scored by accuracy). Squares are `(row, col)` in world coordinates, row 0 at the bottom.

The top-right-most reachable square is the open square reachable from the mouse that maximises row + col
(ties: the higher row). Its distance to the world's top-right corner `(W-1, W-1)` is the city-block distance
`2(W-1) - (row + col)`, so ties do not change it. In every procgen maze checked so far the inner maze's
top-right square is open and reachable, which makes this distance `world_dim - maze_dim`: a maze-size feature.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from steer.maze.layout import Maze, Square

# name -> "continuous" | "categorical"; the CSV columns follow this order after the key columns.
FEATURES: dict[str, str] = {
    "maze_dim": "continuous",
    "mouse_row": "continuous",
    "mouse_col": "continuous",
    "cheese_row": "continuous",
    "cheese_col": "continuous",
    "has_decision_square": "categorical",
    "ds_row": "continuous",
    "ds_col": "continuous",
    "dist_to_cheese": "continuous",
    "dist_to_top_right": "continuous",
    "top_right_reachable_row": "continuous",
    "top_right_reachable_col": "continuous",
    "top_right_reachable_corner_dist": "continuous",
}
KEY_COLUMNS = ("seed", "row_index")
COLUMNS = (*KEY_COLUMNS, *FEATURES)


def top_right_most(maze: Maze, source: Square) -> Square:
    """The reachable square (from `source`) with the largest row + col; ties go to the higher row."""
    return max(maze.distances_to(source), key=_toward_corner)


def _toward_corner(square: Square) -> tuple[int, int]:
    return (square[0] + square[1], square[0])


def corner_distance(maze: Maze, square: Square) -> int:
    """City-block distance from `square` to the world's top-right corner."""
    last = maze.world_dim - 1
    return (last - square[0]) + (last - square[1])


def _pair(square: Square | None) -> tuple[float, float]:
    return (float(square[0]), float(square[1])) if square is not None else (math.nan, math.nan)


def feature_rows(maze: Maze, seed: int, squares: Sequence[Square]) -> list[dict[str, float]]:
    """One row of FEATURES per mouse square, in the order of `squares` (the activations' row order)."""
    cheese = maze.cheese
    ds = maze.decision_square()
    # Distances from every square to each target, once per maze: BFS from the target, not from each square.
    to_cheese = maze.distances_to(cheese) if cheese is not None else {}
    to_corner = maze.distances_to(maze.top_right_square) if maze.is_open(maze.top_right_square) else {}
    rows = []
    # Squares of one connected component share their top-right-most square: one BFS per component.
    components: list[tuple[dict[Square, int], Square]] = []
    for i, sq in enumerate(squares):
        found = next((tr for reach, tr in components if sq in reach), None)
        if found is None:
            reach = maze.distances_to(sq)
            found = max(reach, key=_toward_corner)
            components.append((reach, found))
        tr = found
        rows.append(
            {
                "seed": float(seed),
                "row_index": float(i),
                "maze_dim": float(maze.maze_dim),
                "mouse_row": float(sq[0]),
                "mouse_col": float(sq[1]),
                "cheese_row": _pair(cheese)[0],
                "cheese_col": _pair(cheese)[1],
                "has_decision_square": float(ds is not None),
                "ds_row": _pair(ds)[0],
                "ds_col": _pair(ds)[1],
                "dist_to_cheese": float(to_cheese.get(sq, math.nan)),
                "dist_to_top_right": float(to_corner.get(sq, math.nan)),
                "top_right_reachable_row": float(tr[0]),
                "top_right_reachable_col": float(tr[1]),
                "top_right_reachable_corner_dist": float(corner_distance(maze, tr)),
            }
        )
    return rows
