"""The maze features the behavioural-statistics posts regressed the agent's choice on, one row per maze.

Turner et al. ("Behavioural statistics for a maze-solving agent"; the regression in Mini et al., "Understanding
and controlling a maze-solving policy network") asked which features of a maze decide whether the network goes
to the cheese. Their features are distances between four places, in two metrics:

- `ds`: the decision square (`Maze.decision_square`: where the shortest paths from the start to the cheese and
  to the top-right part ways; mazes without one are left out of the regressions, as in the posts);
- `cheese`: the cheese's square;
- `start`: the mouse's start square, the inner maze's bottom-left;
- `top_right`: the inner maze's top-right square, the top-right-most free square of every procgen maze (it is
  always open), where the cheese sat in training;
- `region`: the inner maze's top-right 5x5 squares, the region the training cheese was drawn from
  (`rand_region=5`); a distance to it is the least distance to any of its squares (a path distance: to any of its
  open squares), so it is 0 inside.

`euclid_a_b` is the straight-line distance between squares' centres in squares; `path_a_b` is the number of steps
of the shortest path through open squares (NaN if unreachable). Besides: `maze_dim`, and `cheese_top_right_n`,
the smallest n for which the cheese lies in the inner maze's top-right n x n squares (so "cheese outside the top
n x n" is `cheese_top_right_n > n`). Squares are (row, col), row 0 at the bottom.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from steer.maze.layout import Maze, Square

REGION = 5  # the training cheese's top-right region (rand_region=5)

# name -> what it is; the CSV columns follow this order. Every value is a float (NaN where undefined).
DECISION_FEATURES: dict[str, str] = {
    "maze_dim": "inner maze side, in squares",
    "has_decision_square": "1 if the maze has a decision square",
    "euclid_ds_cheese": "straight-line distance, decision square to cheese",
    "path_ds_cheese": "steps, decision square to cheese",
    "euclid_ds_top_right": "straight-line distance, decision square to the top-right square",
    "path_ds_top_right": "steps, decision square to the top-right square",
    "euclid_ds_region": "straight-line distance, decision square to the top-right 5x5 region",
    "path_ds_region": "steps, decision square to the top-right 5x5 region",
    "euclid_cheese_top_right": "straight-line distance, cheese to the top-right square",
    "path_cheese_top_right": "steps, cheese to the top-right square",
    "euclid_cheese_region": "straight-line distance, cheese to the top-right 5x5 region",
    "path_cheese_region": "steps, cheese to the top-right 5x5 region",
    "euclid_start_cheese": "straight-line distance, start to cheese",
    "path_start_cheese": "steps, start to cheese",
    "euclid_start_top_right": "straight-line distance, start to the top-right square",
    "path_start_top_right": "steps, start to the top-right square",
    "cheese_top_right_n": "smallest n with the cheese in the inner maze's top-right n x n squares",
}


def euclid(a: Square, b: Square) -> float:
    return math.hypot(a[0] - b[0], a[1] - b[1])


def region_squares(maze: Maze, n: int = REGION) -> list[Square]:
    """The inner maze's top-right n x n squares (walls included), clipped to the inner maze."""
    _, last = maze.inner_bounds
    first = max(maze.inner_bounds[0], last - n + 1)
    return [(r, c) for r in range(first, last + 1) for c in range(first, last + 1)]


def top_right_n(maze: Maze, square: Square) -> int:
    """The smallest n for which `square` lies in the inner maze's top-right n x n squares."""
    _, last = maze.inner_bounds
    return max(last - square[0], last - square[1]) + 1


def _nearest_euclid(square: Square, targets: Iterable[Square]) -> float:
    return min(euclid(square, t) for t in targets)


def decision_features(maze: Maze) -> dict[str, float]:
    """Every feature of DECISION_FEATURES for `maze` (see the module docstring for the definitions)."""
    nan = math.nan
    cheese, ds, start, corner = maze.cheese, maze.decision_square(), maze.start_square, maze.top_right_square
    region = region_squares(maze)
    open_region = [sq for sq in region if maze.is_open(sq)]
    # One breadth-first search per place: every path distance below reads from these.
    from_corner = maze.distances_to(corner) if maze.is_open(corner) else {}
    from_cheese = maze.distances_to(cheese) if cheese is not None else {}
    from_region: dict[Square, int] = {}
    for sq in open_region:  # least steps to any open square of the region
        for other, d in maze.distances_to(sq).items():
            if d < from_region.get(other, 10**9):
                from_region[other] = d

    def steps(table: dict[Square, int], square: Square | None) -> float:
        return float(table[square]) if square is not None and square in table else nan

    def straight(a: Square | None, b: Square | None) -> float:
        return euclid(a, b) if a is not None and b is not None else nan

    def to_region(square: Square | None) -> float:
        return _nearest_euclid(square, region) if square is not None else nan

    return {
        "maze_dim": float(maze.maze_dim),
        "has_decision_square": float(ds is not None),
        "euclid_ds_cheese": straight(ds, cheese),
        "path_ds_cheese": steps(from_cheese, ds),
        "euclid_ds_top_right": straight(ds, corner),
        "path_ds_top_right": steps(from_corner, ds),
        "euclid_ds_region": to_region(ds),
        "path_ds_region": steps(from_region, ds),
        "euclid_cheese_top_right": straight(cheese, corner),
        "path_cheese_top_right": steps(from_corner, cheese),
        "euclid_cheese_region": to_region(cheese),
        "path_cheese_region": steps(from_region, cheese),
        "euclid_start_cheese": straight(start, cheese),
        "path_start_cheese": steps(from_cheese, start),
        "euclid_start_top_right": straight(start, corner),
        "path_start_top_right": steps(from_corner, start),
        "cheese_top_right_n": float(top_right_n(maze, cheese)) if cheese is not None else nan,
    }
