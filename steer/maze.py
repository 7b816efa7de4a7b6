"""Procgen maze states: a codec for the serialized bytes and a `Maze` value with the edits experiments need.

The byte layout follows procgen's C++ serializers (`Game::serialize`, `BasicAbstractGame::serialize`,
`Entity::serialize`, `Grid::serialize`, `MazeGame::serialize`, then a 0xCAFECAFE end marker written by
`get_state`). Ints and floats are 4-byte little-endian; strings are an int length plus bytes. The two RNG
states are decimal strings of varying length, so every field is found by parsing in order, never by offset.

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
from typing import Any

import numpy as np

from steer.errors import SteerError

WALL = 51
EMPTY = 100
CHEESE = 2
PLAYER_TYPE = 0
END_OF_BUFFER = 0xCAFECAFE

Square = tuple[int, int]

# Field kinds: i = int32, f = float32, s = length-prefixed string.
# The tables keep procgen's grouping of fields, several a line: the formatter leaves them as written.
# fmt: off
_GAME_FIELDS: list[tuple[str, str]] = [
    ("serialize_version", "i"), ("game_name", "s"),
    ("paint_vel_info", "i"), ("use_generated_assets", "i"), ("use_monochrome_assets", "i"),
    ("restrict_themes", "i"), ("use_backgrounds", "i"), ("center_agent", "i"), ("debug_mode", "i"),
    ("distribution_mode", "i"), ("use_sequential_levels", "i"), ("use_easy_jump", "i"),
    ("plain_assets", "i"), ("physics_mode", "i"),
    ("grid_step", "i"), ("level_seed_low", "i"), ("level_seed_high", "i"), ("game_type", "i"),
    ("game_n", "i"),
    ("level_seed_rand_gen.is_seeded", "i"), ("level_seed_rand_gen.state", "s"),
    ("rand_gen.is_seeded", "i"), ("rand_gen.state", "s"),
    ("step_data.reward", "f"), ("step_data.done", "i"), ("step_data.level_complete", "i"),
    ("action", "i"), ("timeout", "i"),
    ("current_level_seed", "i"), ("prev_level_seed", "i"), ("episodes_remaining", "i"),
    ("episode_done", "i"), ("last_reward_timer", "i"), ("last_reward", "f"), ("default_action", "i"),
    ("fixed_asset_seed", "i"), ("cur_time", "i"), ("is_waiting_for_step", "i"),
    ("grid_size", "i"),
]
_ENTITY_FIELDS: list[tuple[str, str]] = [
    ("x", "f"), ("y", "f"), ("vx", "f"), ("vy", "f"), ("rx", "f"), ("ry", "f"),
    ("type", "i"), ("image_type", "i"), ("image_theme", "i"), ("render_z", "i"),
    ("will_erase", "i"), ("collides_with_entities", "i"),
    ("collision_margin", "f"), ("rotation", "f"), ("vrot", "f"),
    ("is_reflected", "i"), ("fire_time", "i"), ("spawn_time", "i"), ("life_time", "i"),
    ("expire_time", "i"), ("use_abs_coords", "i"),
    ("friction", "f"), ("smart_step", "i"), ("avoids_collisions", "i"), ("auto_erase", "i"),
    ("alpha", "f"), ("health", "f"), ("theta", "f"), ("grow_rate", "f"), ("alpha_decay", "f"),
    ("climber_spawn_x", "f"),
]
_BASIC_FIELDS: list[tuple[str, str]] = [
    ("use_procgen_background", "i"), ("background_index", "i"), ("bg_tile_ratio", "f"),
    ("bg_pct_x", "f"), ("char_dim", "f"), ("last_move_action", "i"), ("move_action", "i"),
    ("special_action", "i"), ("mixrate", "f"), ("maxspeed", "f"), ("max_jump", "f"),
    ("action_vx", "f"), ("action_vy", "f"), ("action_vrot", "f"), ("center_x", "f"), ("center_y", "f"),
    ("random_agent_start", "i"), ("has_useful_vel_info", "i"), ("step_rand_int", "i"),
    ("asset_rand_gen.is_seeded", "i"), ("asset_rand_gen.state", "s"),
    ("main_width", "i"), ("main_height", "i"), ("out_of_bounds_object", "i"),
    ("unit", "f"), ("view_dim", "f"), ("x_off", "f"), ("y_off", "f"), ("visibility", "f"),
    ("min_visibility", "f"),
]
# fmt: on


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise SteerError(
                f"Maze state is truncated: needed {n} bytes at offset {self.pos} of {len(self.data)}. "
                "Pass bytes from procgen's callmethod('get_state') for the 'maze' game."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def read(self, kind: str) -> Any:
        if kind == "i":
            return struct.unpack("<i", self.take(4))[0]
        if kind == "f":
            # Keep float fields as their raw bits so that re-serialising is byte-identical.
            return self.take(4)
        length = struct.unpack("<i", self.take(4))[0]
        return self.take(length)

    def read_fields(self, schema: list[tuple[str, str]]) -> dict[str, Any]:
        return {name: self.read(kind) for name, kind in schema}


def _write(kind: str, value: Any) -> bytes:
    if kind == "i":
        return struct.pack("<i", value)
    if kind == "f":
        return value if isinstance(value, bytes) else struct.pack("<f", value)
    return struct.pack("<i", len(value)) + value


def _write_fields(schema: list[tuple[str, str]], values: dict[str, Any]) -> bytes:
    return b"".join(_write(kind, values[name]) for name, kind in schema)


def _f32(raw: bytes) -> float:
    return struct.unpack("<f", raw)[0]


@dataclass(frozen=True)
class MazeState:
    """Every field of a serialized maze state, in procgen's order."""

    game: dict[str, Any]
    entities: tuple[dict[str, Any], ...]
    basic: dict[str, Any]
    grid_w: int
    grid_h: int
    grid: tuple[int, ...]
    maze_dim: int
    world_dim: int

    @classmethod
    def parse(cls, data: bytes) -> MazeState:
        r = _Reader(data)
        game = r.read_fields(_GAME_FIELDS)
        if game["game_name"] != b"maze":
            raise SteerError(
                f"Maze state is for the game {game['game_name']!r}, not 'maze'. "
                "Create the environment with env_name='maze'."
            )
        n_entities = r.read("i")
        entities = tuple(r.read_fields(_ENTITY_FIELDS) for _ in range(n_entities))
        basic = r.read_fields(_BASIC_FIELDS)
        grid_w, grid_h, n = r.read("i"), r.read("i"), r.read("i")
        if n != grid_w * grid_h:
            raise SteerError(f"Maze state grid holds {n} cells, expected {grid_w}x{grid_h}.")
        grid = struct.unpack(f"<{n}i", r.take(4 * n))
        maze_dim, world_dim = r.read("i"), r.read("i")
        end = struct.unpack("<I", r.take(4))[0]
        if end != END_OF_BUFFER or r.pos != len(data):
            raise SteerError(
                f"Maze state does not end with procgen's 0xCAFECAFE marker where expected (offset {r.pos} "
                f"of {len(data)}). The procgen build may use another state format."
            )
        return cls(game, entities, basic, grid_w, grid_h, grid, maze_dim, world_dim)

    def to_bytes(self) -> bytes:
        parts = [_write_fields(_GAME_FIELDS, self.game), struct.pack("<i", len(self.entities))]
        parts += [_write_fields(_ENTITY_FIELDS, e) for e in self.entities]
        parts.append(_write_fields(_BASIC_FIELDS, self.basic))
        parts.append(struct.pack(f"<3i{len(self.grid)}i", self.grid_w, self.grid_h, len(self.grid), *self.grid))
        parts.append(struct.pack("<iiI", self.maze_dim, self.world_dim, END_OF_BUFFER))
        return b"".join(parts)

    def player_offset(self) -> int:
        """Byte offset of the player's float32 x (y follows) in `to_bytes()`: the rest is fixed-size."""
        entity_size = 4 * len(_ENTITY_FIELDS)
        return len(_write_fields(_GAME_FIELDS, self.game)) + 4 + self.player_index() * entity_size

    def player_index(self) -> int:
        for i, e in enumerate(self.entities):
            if e["type"] == PLAYER_TYPE:
                return i
        raise SteerError("Maze state has no player entity (the mouse); it is not a maze level state.")


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


# Byte offsets inside one serialised entity (every entity field is 4 bytes wide).
_ENTITY_SIZE = 4 * len(_ENTITY_FIELDS)
_REFLECTED_OFFSET = 4 * [name for name, _ in _ENTITY_FIELDS].index("is_reflected")
_TYPE_OFFSET = 4 * [name for name, _ in _ENTITY_FIELDS].index("type")
_GAME_KINDS = [kind for _, kind in _GAME_FIELDS]


def _check_facing(facing: int) -> int:
    if facing not in (0, 1):
        raise SteerError(f"facing: {facing!r} is not a facing; use 0 (as after a move left) or 1 (after a move right).")
    return int(facing)


def read_mouse(data: bytes) -> tuple[Square, int]:
    """The mouse's square and facing in a serialised maze state, without parsing the rest.

    Sampled episodes read the state after every step of hundreds of environments; a full `Maze.from_bytes`
    costs ~45 us, this ~5 us. The game fields before the entities hold two strings of varying length, so
    they are walked in order; entities are fixed-size.
    """
    pos = 0
    for kind in _GAME_KINDS:
        if kind == "s":
            pos += 4 + struct.unpack_from("<i", data, pos)[0]
        else:
            pos += 4
    (n_entities,) = struct.unpack_from("<i", data, pos)
    pos += 4
    for _ in range(n_entities):
        if struct.unpack_from("<i", data, pos + _TYPE_OFFSET)[0] == PLAYER_TYPE:
            x, y = struct.unpack_from("<ff", data, pos)
            (reflected,) = struct.unpack_from("<i", data, pos + _REFLECTED_OFFSET)
            return (int(y), int(x)), int(reflected)
        pos += _ENTITY_SIZE
    raise SteerError("Maze state has no player entity (the mouse); it is not a maze level state.")
