"""Families of paired maze edits: rules that build, for any maze, two observations differing in one factor.

`steer discover` searches these families for steering vectors ("X-vectors": activations(a) − activations(b) of
a pair that differs in X). Each family is one named rule `Maze -> Pair | Empty`: given a level as generated (the
mouse on its start square), the pair's two mazes, the squares where they differ, and the edits that made them; or
the reason the family has no member on this maze (no room for a path, no decision square, ...). Squares are
chosen relative to the maze (its inner corners, centre, start, decision square, cheese), so one family means the
same thing on mazes of every size.

The families, by factor:

- `path:<where>`: a path opened from the inner maze to a corner or the middle of an edge of the world, minus the
  maze (`path:top_right` is the top-right vector's pair, the same squares `Maze.top_right_path` opens);
- `cheese_at:<where>`: the cheese placed at a square (its own, an inner corner, the centre, near the start) minus
  the maze without cheese (`cheese_at:own` is the cheese vector's pair);
- `cheese_move:<to>`: the cheese moved from its own square into another region, minus the level as generated;
- `wall:<where>` / `open:<where>`: a wall closed on the step from the decision square toward the cheese or the
  top-right, or halfway along the path to the cheese; a wall beside the decision square opened;
- `mouse:<where>`: the mouse on another square (inner top-right, decision square, centre) minus the mouse at the
  start;
- nulls, run beside every search: `null:same` (the maze minus itself: a zero vector, which must find nothing) and
  `null:other_maze` (the maze minus an unrelated level: the floor an X-vector must clear).

*Place* families (`Family.place`: the paths and the cheese moves) name a place the agent might be drawn to, and
the one place-vector known to work (the top-right vector) works only with the cheese gone, so discover screens
them with the cheese kept and with it removed (`Family.build_for`). With the cheese removed, a path's pair is
built on the level without its cheese and applied there (the top-right vector's cheese-removed form); a cheese
move's pair needs a cheese to move, so it is built on the level as generated and its vector applied to the level
without its cheese: does the vector of "the cheese there rather than here" draw an agent with no cheese to
follow there? The nulls are built on the level without its cheese too, so a removed candidate's floor is
measured on the mazes it is applied to.

Corner and centre *regions* (`regions`) are where discover measures P(visit): the inner maze's squares within a
third of its size of each corner (1×1 in a 3×3 maze, 5×5 in a 15×15 one), and the middle third.

Over 400 lines on purpose: the families are a table of rules, each a few lines, and the regions they are
measured in; split by family, the table would be harder to read whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from steer.maze.layout import Maze, Square

Edit = tuple[
    str, Square | None
]  # the edit ops of steer.net.vectors.EDIT_OPS: ("open", (r, c)), ("remove_cheese", None)
REGIONS = ("top_left", "top_right", "bottom_right", "centre")


@dataclass(frozen=True)
class Pair:
    """The two mazes of a family's member on one level, and what differs between them."""

    a: Maze
    b: Maze
    squares: tuple[Square, ...]  # where the two mazes differ (opened, walled, cheese or mouse squares)
    edits_a: tuple[Edit, ...] = ()  # what made a and b from the level (steer.net.vectors edit ops), for the record
    edits_b: tuple[Edit, ...] = ()
    other_seed: int | None = None  # null:other_maze: the unrelated level b is


@dataclass(frozen=True)
class Empty:
    """The family has no member on this maze, and why."""

    reason: str


Other = Callable[[], tuple[int, Maze]]  # an unrelated level (its seed and maze), for null:other_maze
TARGETS = ("keep", "remove")  # the mazes a candidate is applied to: the level as generated, or without its cheese
# How a family's member is made for mazes with the cheese removed: "built" on the level without its cheese, or
# "carried" (built on the level as generated, which it needs, and applied to the level without its cheese).
Removed = Literal["built", "carried"]


@dataclass(frozen=True)
class Family:
    name: str
    factor: str  # path | cheese_at | cheese_move | wall | mouse | null
    doc: str
    rule: Callable[[Maze, Other], Pair | Empty]
    spatial: bool = True  # its factor is a place: it needs a layer with a spatial map to be located
    # A known vector this family's vector is a version of, and how (`relation`): cheese_at:X's pair (cheese at X −
    # no cheese) is the cheese vector's own pair with the cheese placed at another square, the same concept; and
    # cheese_move:X's pair (cheese at X − cheese at its own square) has activations(cheese at X) −
    # activations(no cheese) − (activations(level) − activations(no cheese)), cheese_at:X's vector minus the cheese
    # vector exactly. A found member of such a family is reported as a relative, not as a new X-vector.
    relative: str | None = None
    relation: str | None = None
    # How its member is made for mazes with the cheese removed (module docstring); None: the cheese kept only.
    removed: Removed | None = None

    @property
    def place(self) -> bool:
        """A place family (a path, a cheese move): screened with the cheese kept and with it removed."""
        return self.removed is not None and self.factor != "null"

    @property
    def targets(self) -> tuple[str, ...]:
        """The targets (TARGETS) discover screens this family on."""
        return TARGETS if self.removed is not None else ("keep",)

    def build(self, level: Maze, other: Other) -> Pair | Empty:
        return self.rule(level, other)

    def build_for(self, level: Maze, target: str, other: Other) -> Pair | Empty:
        """Its member for a candidate on `level` (as generated) with the cheese kept or removed (`target`); the
        candidate is applied to `level`, or to `level.without_cheese()` when removed."""
        if target == "keep":
            return self.rule(level, other)
        if self.removed is None:
            return Empty(f"{self.name} is not searched with the cheese removed (only the place families are)")
        return self.rule(level.without_cheese() if self.removed == "built" else level, other)


# -- geometry ----------------------------------------------------------------------------------------


def _third(maze: Maze) -> int:
    return max(1, -(-maze.maze_dim // 3))


def regions(maze: Maze) -> dict[str, tuple[Square, ...]]:
    """The open inner squares of each corner region (a third of the maze on a side) and of the centre."""
    lo, hi = maze.inner_bounds
    k = _third(maze)
    mid0 = lo + (maze.maze_dim - k) // 2
    spans = {
        "top_left": (range(hi - k + 1, hi + 1), range(lo, lo + k)),
        "top_right": (range(hi - k + 1, hi + 1), range(hi - k + 1, hi + 1)),
        "bottom_right": (range(lo, lo + k), range(hi - k + 1, hi + 1)),
        "centre": (range(mid0, mid0 + k), range(mid0, mid0 + k)),
    }
    return {
        name: tuple((r, c) for r in rows for c in cols if maze.is_open((r, c))) for name, (rows, cols) in spans.items()
    }


def _anchor(maze: Maze, where: str) -> Square:
    lo, hi = maze.inner_bounds
    mid = lo + (maze.maze_dim - 1) // 2
    return {
        "top_left": (hi, lo),
        "top_right": (hi, hi),
        "bottom_right": (lo, hi),
        "bottom_left": (lo, lo),
        "centre": (mid, mid),
    }[where]


def nearest_open(maze: Maze, target: Square, avoid: tuple[Square, ...] = ()) -> Square | None:
    """The open inner square closest to `target` (Euclidean; ties: lowest row, then column), not in `avoid`."""
    lo, hi = maze.inner_bounds
    best = None
    for sq in maze.open_squares():
        if not (lo <= sq[0] <= hi and lo <= sq[1] <= hi) or sq in avoid:
            continue
        key = ((sq[0] - target[0]) ** 2 + (sq[1] - target[1]) ** 2, sq)
        if best is None or key < best:
            best = key
    return None if best is None else best[1]


def _region_of(maze: Maze, square: Square) -> str | None:
    for name, squares in regions(maze).items():
        if square in squares:
            return name
    return None


def _edge_middle(maze: Maze) -> int:
    """The middle row (= column) of the inner maze, rounded down to an open line (even offset from the edge)."""
    lo, _ = maze.inner_bounds
    off = (maze.maze_dim - 1) // 2
    return lo + off - off % 2


# -- paths to the world's corners and edges ----------------------------------------------------------


def path_squares(maze: Maze, where: str) -> list[Square]:
    """The squares outside the inner maze from its `where` square to the world's edge (edges: straight out) or
    corner (vertically to the world's top or bottom row, then along it): `Maze.top_right_path` for top_right."""
    if maze.maze_dim >= maze.world_dim:
        return []
    if where == "top_right":
        return maze.top_right_path()
    lo, hi = maze.inner_bounds
    last = maze.world_dim - 1
    mid = _edge_middle(maze)
    if where in ("top", "bottom", "left", "right"):
        if where == "top":
            return [(r, mid) for r in range(hi + 1, last + 1)]
        if where == "bottom":
            return [(r, mid) for r in range(lo - 1, -1, -1)]
        if where == "left":
            return [(mid, c) for c in range(lo - 1, -1, -1)]
        return [(mid, c) for c in range(hi + 1, last + 1)]
    row, col = _anchor(maze, where)
    up = where.startswith("top")
    edge_row = last if up else 0
    vertical = [(r, col) for r in (range(row + 1, last + 1) if up else range(row - 1, -1, -1))]
    right = where.endswith("right")
    horizontal = [(edge_row, c) for c in (range(col + 1, last + 1) if right else range(col - 1, -1, -1))]
    return vertical + horizontal


def _path_rule(where: str) -> Callable[[Maze, Other], Pair | Empty]:
    def rule(level: Maze, other: Other) -> Pair | Empty:
        squares = [sq for sq in path_squares(level, where) if not level.is_open(sq)]
        if not squares:
            return Empty(
                f"no room for a path to the world's {where.replace('_', '-')}: the {level.maze_dim}x{level.maze_dim} "
                f"maze fills the {level.world_dim}x{level.world_dim} world"
            )
        a = level
        for sq in squares:
            a = a.with_open(sq)
        return Pair(a, level, tuple(squares), tuple(("open", sq) for sq in squares), ())

    return rule


# -- the cheese --------------------------------------------------------------------------------------


def _cheese_square(level: Maze, where: str) -> Square | None:
    if where == "own":
        return level.cheese
    if where == "near_start":
        dist = level.distances_to(level.start_square)
        near = sorted((d, sq) for sq, d in dist.items() if 2 <= d <= 3)
        return near[0][1] if near else None
    return nearest_open(level, _anchor(level, where), avoid=(level.mouse,))


def _cheese_at_rule(where: str) -> Callable[[Maze, Other], Pair | Empty]:
    def rule(level: Maze, other: Other) -> Pair | Empty:
        square = _cheese_square(level, where)
        if square is None:
            why = "the level has no cheese" if where == "own" else f"no open square for the cheese ({where})"
            return Empty(why)
        b = level.without_cheese()
        a = b.with_cheese(square)
        return Pair(a, b, (square,), (("cheese", square),), (("remove_cheese", None),))

    return rule


def _cheese_move_rule(to: str) -> Callable[[Maze, Other], Pair | Empty]:
    def rule(level: Maze, other: Other) -> Pair | Empty:
        own = level.cheese
        if own is None:
            return Empty("the level has no cheese to move")
        if _region_of(level, own) == to:
            return Empty(f"the cheese is already in the {to.replace('_', '-')} region")
        square = nearest_open(level, _anchor(level, to), avoid=(level.mouse,))
        if square is None or square == own:
            return Empty(f"no open square in the {to.replace('_', '-')} region")
        return Pair(level.with_cheese(square), level, (square, own), (("cheese", square),), ())

    return rule


# -- walls at the decision square and on the path to the cheese ---------------------------------------


def _step_from_ds(level: Maze, toward: str) -> Square | Empty:
    ds = level.decision_square()
    if ds is None:
        return Empty("the level has no decision square")
    target = level.cheese if toward == "cheese" else level.top_right_square
    assert target is not None
    path = level.shortest_path(ds, target)
    if path is None or len(path) < 3:  # the next square is the target itself: walling it is not a wall edit
        return Empty(f"the step from the decision square toward the {toward.replace('_', '-')} is its target")
    return path[1]


def _wall_rule(where: str) -> Callable[[Maze, Other], Pair | Empty]:
    def rule(level: Maze, other: Other) -> Pair | Empty:
        if where in ("ds_to_cheese", "ds_to_top_right"):
            square = _step_from_ds(level, where.removeprefix("ds_to_"))
            if isinstance(square, Empty):
                return square
        else:  # cheese_path: halfway along the start-to-cheese path
            if level.cheese is None:
                return Empty("the level has no cheese")
            path = level.shortest_path(level.start_square, level.cheese) or []
            if len(path) < 3:
                return Empty("the path to the cheese has no square between the start and the cheese")
            square = path[len(path) // 2]
        return Pair(level.with_wall(square), level, (square,), (("wall", square),), ())

    return rule


def _open_ds_rule(level: Maze, other: Other) -> Pair | Empty:
    ds = level.decision_square()
    if ds is None:
        return Empty("the level has no decision square")
    lo, hi = level.inner_bounds
    for dr, dc in ((1, 0), (0, 1), (-1, 0), (0, -1)):
        wall = (ds[0] + dr, ds[1] + dc)
        beyond = (ds[0] + 2 * dr, ds[1] + 2 * dc)
        inside = all(lo <= v <= hi for v in (*wall, *beyond))
        if inside and not level.is_open(wall) and level.is_open(beyond):
            return Pair(level.with_open(wall), level, (wall,), (("open", wall),), ())
    return Empty("no wall beside the decision square separates it from an open square")


# -- the mouse -----------------------------------------------------------------------------------------


def _mouse_rule(where: str) -> Callable[[Maze, Other], Pair | Empty]:
    def rule(level: Maze, other: Other) -> Pair | Empty:
        if where == "top_right":
            square: Square | None = level.top_right_square
        elif where == "ds":
            square = level.decision_square()
        else:
            square = nearest_open(level, _anchor(level, "centre"), avoid=tuple(sq for sq in [level.cheese] if sq))
        if square is None:
            return Empty("the level has no decision square")
        if square in (level.mouse, level.cheese):
            return Empty(f"the {where.replace('_', '-')} square is the start or the cheese")
        return Pair(level.with_mouse(square), level, (square,), (("mouse", square),), ())

    return rule


# -- nulls -----------------------------------------------------------------------------------------------


def _same_rule(level: Maze, other: Other) -> Pair | Empty:
    return Pair(level, level, ())


def _other_rule(level: Maze, other: Other) -> Pair | Empty:
    seed, maze = other()
    if maze.world_dim != level.world_dim:
        return Empty("the unrelated level has another world size")
    return Pair(level, maze, (), other_seed=seed)


def other_seed(seed: int) -> int:
    """The unrelated level `null:other_maze` pairs a maze with: far from any sample, fixed per maze."""
    return (seed * 7919 + 500_009) % 2_000_000_000


def _family_list() -> list[Family]:
    """Every family of paired edits, in the order the docs list them: a table written as code, long
    because the families are many, not because it does several things."""
    out = []
    for where in ("top_right", "top_left", "bottom_right", "bottom_left", "top", "right", "bottom", "left"):
        side = where.replace("_", "-")
        shape = "edge, straight out" if "_" not in where else "corner, along the world's border"
        out.append(
            Family(
                f"path:{where}",
                "path",
                f"the maze with a path opened from its inner {side} square to the world's {side} {shape}, "
                "minus the maze",
                _path_rule(where),
                removed="built",
            )
        )
    for where in ("own", "top_left", "top_right", "bottom_right", "centre", "near_start"):
        doc = {
            "own": "the level as generated minus the level without cheese (the cheese vector's pair)",
            "near_start": "the cheese 2-3 steps from the start minus no cheese",
        }.get(where, f"the cheese on the open square nearest the inner {where.replace('_', '-')} minus no cheese")
        kin = (
            {}
            if where == "own"
            else {
                "relative": "cheese",
                "relation": "it is a cheese vector: the cheese vector's pair with the cheese placed at another square",
            }
        )
        out.append(Family(f"cheese_at:{where}", "cheese_at", doc, _cheese_at_rule(where), **kin))
    for to in ("top_left", "top_right", "bottom_right", "centre"):
        out.append(
            Family(
                f"cheese_move:to_{to}",
                "cheese_move",
                f"the cheese moved from its square to the open square nearest the inner {to.replace('_', '-')}, "
                "minus the level as generated (exactly cheese_at's vector minus the cheese vector)",
                _cheese_move_rule(to),
                relative="cheese",
                relation="its vector is cheese_at's minus the cheese vector, exactly: it contains the cheese vector",
                removed="carried",
            )
        )
    out += [
        Family(
            "wall:ds_to_cheese",
            "wall",
            "a wall on the first step from the decision square toward the cheese, minus the maze",
            _wall_rule("ds_to_cheese"),
        ),
        Family(
            "wall:ds_to_top_right",
            "wall",
            "a wall on the first step from the decision square toward the top-right square, minus the maze",
            _wall_rule("ds_to_top_right"),
        ),
        Family(
            "wall:cheese_path",
            "wall",
            "a wall halfway along the shortest path from the start to the cheese, minus the maze",
            _wall_rule("cheese_path"),
        ),
        Family(
            "open:ds_wall",
            "wall",
            "the first wall beside the decision square (up, right, down, left) that separates it from an open "
            "square, opened, minus the maze",
            _open_ds_rule,
        ),
    ]
    for where in ("top_right", "ds", "centre"):
        name = {"ds": "decision square", "top_right": "inner top-right square", "centre": "square nearest the centre"}
        out.append(
            Family(
                f"mouse:{where}",
                "mouse",
                f"the mouse on the {name[where]} minus the mouse on the start square",
                _mouse_rule(where),
            )
        )
    out += [
        Family(
            "null:same",
            "null",
            "the maze minus itself: a zero vector (must find nothing)",
            _same_rule,
            False,
            removed="built",
        ),
        Family(
            "null:other_maze",
            "null",
            "the maze minus an unrelated level (seed from steer.maze.families.other_seed): the floor an X-vector "
            "must clear",
            _other_rule,
            False,
            removed="built",
        ),
    ]
    return out


FAMILIES: dict[str, Family] = {f.name: f for f in _family_list()}
NULLS = ("null:same", "null:other_maze")
SEARCHED = tuple(name for name in FAMILIES if name not in NULLS)
