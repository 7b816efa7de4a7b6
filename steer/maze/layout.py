"""Procgen maze levels: the `Maze` value, with the geometry, edits and path searches experiments need.

A `Maze` is read from, and written back to, procgen's serialized state bytes by the codec in
steer/maze/state.py (`MazeState`); `to_bytes()` gives a state that procgen's `set_state` accepts.

Coordinates are `(row, col)` in world cells with row 0 at the bottom, the way procgen indexes its grid
(`y * w + x`). The world is 15x15 in easy mode and 25x25 in hard mode; both sizes, and the maze size, are
read from the state itself.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from steer.errors import SteerError
from steer.maze.state import _REFLECTED_OFFSET, MazeState, Square, _f32
from steer.maze.state import read_mouse as read_mouse  # re-exported: tests import it from here

WALL = 51
EMPTY = 100
CHEESE = 2


@dataclass(frozen=True)
class Maze:
    """A maze level: its grid (row 0 at the bottom), the mouse square, and the state it came from.

    Edits return a new `Maze`; `to_bytes()` gives a state that procgen's `set_state` accepts.
    """

    state: MazeState
    grid: np.ndarray = field(repr=False)  # (world_dim, world_dim) int array, grid[row, col]
    mouse: Square

    @classmethod
    def from_bytes(cls, data: bytes) -> Maze:
        state = MazeState.parse(data)
        grid = np.asarray(state.grid, dtype=np.int32).reshape(state.grid_h, state.grid_w)
        grid.setflags(write=False)
        player = state.entities[state.player_index()]
        mouse = (int(_f32(player["y"])), int(_f32(player["x"])))
        return cls(state=state, grid=grid, mouse=mouse)

    def to_bytes(self) -> bytes:
        entities = list(self.state.entities)
        i = self.state.player_index()
        row, col = self.mouse
        player = dict(entities[i])
        # Re-use the original bits when the mouse has not moved, so an unedited maze round-trips exactly.
        if (int(_f32(player["y"])), int(_f32(player["x"]))) != (row, col):
            player["x"] = struct.pack("<f", col + 0.5)
            player["y"] = struct.pack("<f", row + 0.5)
        entities[i] = player
        grid = tuple(int(v) for v in self.grid.ravel())
        return replace(self.state, entities=tuple(entities), grid=grid).to_bytes()

    def with_mouse_states(self, squares: Iterable[Square], facing: int | None = None) -> list[bytes]:
        """States with the mouse on each square, serialising once and rewriting only the mouse's position.

        `facing` sets the sprite's `is_reflected` flag in every state (see `facing`); None keeps the maze's.
        """
        base = bytearray(self.to_bytes())
        offset = self.state.player_offset()
        if facing is not None:
            struct.pack_into("<i", base, offset + _REFLECTED_OFFSET, _check_facing(facing))
        states = []
        for square in squares:
            if not self.is_open(square):
                raise SteerError(f"Cannot put the mouse on {list(square)}: it is a wall square.")
            struct.pack_into("<ff", base, offset, square[1] + 0.5, square[0] + 0.5)
            states.append(bytes(base))
        return states

    @property
    def facing(self) -> int:
        """The mouse sprite's `is_reflected` flag: 1 after a move right, 0 after a move left and at reset.

        It is the only part of the state besides the mouse's square that the observation shows of the mouse.
        """
        return int(self.state.entities[self.state.player_index()]["is_reflected"])

    def with_facing(self, facing: int) -> Maze:
        """The same maze with the mouse's `is_reflected` flag set to `facing` (0 or 1)."""
        entities = list(self.state.entities)
        i = self.state.player_index()
        entities[i] = {**entities[i], "is_reflected": _check_facing(facing)}
        return replace(self, state=replace(self.state, entities=tuple(entities)))

    # -- geometry ---------------------------------------------------------------------------------

    @property
    def world_dim(self) -> int:
        return self.state.world_dim

    @property
    def maze_dim(self) -> int:
        return self.state.maze_dim

    @property
    def margin(self) -> int:
        return (self.world_dim - self.maze_dim) // 2

    @property
    def inner_bounds(self) -> tuple[int, int]:
        """First and last world row (= col) of the inner maze, inclusive."""
        return self.margin, self.margin + self.maze_dim - 1

    @property
    def start_square(self) -> Square:
        """Where procgen puts the mouse at reset: the inner maze's bottom-left square."""
        return (self.margin, self.margin)

    @property
    def top_right_square(self) -> Square:
        """The inner maze's top-right square, where the training cheese was."""
        last = self.margin + self.maze_dim - 1
        return (last, last)

    @property
    def cheese(self) -> Square | None:
        rows, cols = np.nonzero(self.grid == CHEESE)
        return (int(rows[0]), int(cols[0])) if len(rows) else None

    @cached_property
    def _open(self) -> frozenset[Square]:
        # Path searches ask is_open for every neighbour; a set lookup is ~20x cheaper than indexing numpy.
        return frozenset(self.open_squares())

    def is_open(self, square: Square) -> bool:
        return tuple(square) in self._open

    def open_squares(self) -> list[Square]:
        """Every square the mouse can stand on, bottom row first, left to right."""
        rows, cols = np.nonzero(self.grid != WALL)
        return [(int(r), int(c)) for r, c in zip(rows, cols, strict=True)]

    def neighbours(self, square: Square) -> Iterator[Square]:
        row, col = square
        for step in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            nxt = (row + step[0], col + step[1])
            if self.is_open(nxt):
                yield nxt

    # -- edits ------------------------------------------------------------------------------------

    def _with_cells(self, cells: Iterable[tuple[Square, int]]) -> Maze:
        grid = self.grid.copy()
        for (row, col), code in cells:
            self._check_in_world((row, col))
            grid[row, col] = code
        grid.setflags(write=False)
        return replace(self, grid=grid)

    def _check_in_world(self, square: Square) -> None:
        row, col = square
        if not (0 <= row < self.world_dim and 0 <= col < self.world_dim):
            raise SteerError(
                f"Square {list(square)} is outside the {self.world_dim}x{self.world_dim} world; "
                f"rows and columns run from 0 to {self.world_dim - 1} (row 0 is the bottom)."
            )

    def without_cheese(self) -> Maze:
        cheese = self.cheese
        return self if cheese is None else self._with_cells([(cheese, EMPTY)])

    def with_cheese(self, square: Square) -> Maze:
        """Move the cheese to `square` (an open square); the old cheese square becomes empty."""
        self._check_in_world(square)
        if not self.is_open(square):
            raise SteerError(f"Cannot place the cheese on {list(square)}: it is a wall square.")
        if square == self.mouse:
            raise SteerError(f"Cannot place the cheese on {list(square)}: the mouse is there.")
        return self.without_cheese()._with_cells([(square, CHEESE)])

    def with_mouse(self, square: Square) -> Maze:
        self._check_in_world(square)
        if not self.is_open(square):
            raise SteerError(f"Cannot put the mouse on {list(square)}: it is a wall square.")
        return replace(self, mouse=square)

    def with_wall(self, square: Square) -> Maze:
        if square == self.mouse:
            raise SteerError(f"Cannot wall {list(square)}: the mouse is there.")
        return self._with_cells([(square, WALL)])

    def with_open(self, square: Square) -> Maze:
        """Make `square` walkable; the cheese, if it was there, is removed."""
        return self._with_cells([(square, EMPTY)])

    def top_right_path(self) -> list[Square]:
        """The L-shaped path from the inner top-right square up to the world's top row, then right.

        Empty when the maze fills the world: there is no margin to open a path through.
        """
        if self.maze_dim >= self.world_dim:
            return []
        row, col = self.top_right_square
        top = self.world_dim - 1
        up = [(r, col) for r in range(row + 1, top + 1)]
        right = [(top, c) for c in range(col + 1, self.world_dim)]
        return up + right

    def with_top_right_path(self) -> Maze:
        """Open the walls along `top_right_path()`; open squares on it (and a cheese there) stay as they are."""
        path = self.top_right_path()
        if not path:
            raise SteerError(
                f"This maze is {self.maze_dim}x{self.maze_dim} in a {self.world_dim}x{self.world_dim} world: "
                "with no margin there is no path to open to the top-right corner. Choose a seed whose maze "
                "is smaller than the world."
            )
        return self._with_cells((sq, EMPTY) for sq in path if self.grid[sq] == WALL)

    # -- paths ------------------------------------------------------------------------------------

    def shortest_path(self, source: Square, target: Square) -> list[Square] | None:
        """Breadth-first shortest path over open squares, both ends included; None if unreachable."""
        if not (self.is_open(source) and self.is_open(target)):
            return None
        parent: dict[Square, Square | None] = {source: None}
        queue = deque([source])
        while queue:
            square = queue.popleft()
            if square == target:
                path = [square]
                while (prev := parent[path[-1]]) is not None:
                    path.append(prev)
                return path[::-1]
            for nxt in self.neighbours(square):
                if nxt not in parent:
                    parent[nxt] = square
                    queue.append(nxt)
        return None

    def distances_to(self, target: Square) -> dict[Square, int]:
        """Steps from every reachable open square to `target`."""
        dist = {target: 0}
        queue = deque([target])
        while queue:
            square = queue.popleft()
            for nxt in self.neighbours(square):
                if nxt not in dist:
                    dist[nxt] = dist[square] + 1
                    queue.append(nxt)
        return dist

    def decision_square(self) -> Square | None:
        """The last square shared by the shortest paths from the start to the cheese and to the top-right.

        None when there is no cheese, or one path contains the other (there is no choice to make).
        """
        cheese = self.cheese
        if cheese is None:
            return None
        to_cheese = self.shortest_path(self.start_square, cheese)
        to_corner = self.shortest_path(self.start_square, self.top_right_square)
        if to_cheese is None or to_corner is None:
            return None
        if cheese in to_corner or self.top_right_square in to_cheese:
            return None
        shared = 0
        while shared < min(len(to_cheese), len(to_corner)) and to_cheese[shared] == to_corner[shared]:
            shared += 1
        return to_cheese[shared - 1]


def _check_facing(facing: int) -> int:
    if facing not in (0, 1):
        raise SteerError(f"facing: {facing!r} is not a facing; use 0 (as after a move left) or 1 (after a move right).")
    return int(facing)
