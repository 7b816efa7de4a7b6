"""The codec for procgen's serialized maze states: bytes to `MazeState` and back, field by field.

The byte layout follows procgen's C++ serializers (`Game::serialize`, `BasicAbstractGame::serialize`,
`Entity::serialize`, `Grid::serialize`, `MazeGame::serialize`, then a 0xCAFECAFE end marker written by
`get_state`). Ints and floats are 4-byte little-endian; strings are an int length plus bytes. The two RNG
states are decimal strings of varying length, so every field is found by parsing in order, never by offset.
Float fields are kept as their raw bits, so an unedited state re-serialises byte for byte.

It lives apart from steer/maze/layout.py, whose `Maze` is the value experiments edit: this module knows procgen's
byte layout and nothing of walls, cheese or paths. `read_mouse` is here too: it reads the mouse straight
from the bytes, for the hot loop of sampled episodes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from steer.errors import SteerError

PLAYER_TYPE = 0
END_OF_BUFFER = 0xCAFECAFE

Square = tuple[int, int]  # a world cell as (row, col), row 0 at the bottom (procgen's y, x)

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


# Byte offsets inside one serialised entity (every entity field is 4 bytes wide).
_ENTITY_SIZE = 4 * len(_ENTITY_FIELDS)
_REFLECTED_OFFSET = 4 * [name for name, _ in _ENTITY_FIELDS].index("is_reflected")
_TYPE_OFFSET = 4 * [name for name, _ in _ENTITY_FIELDS].index("type")
_GAME_KINDS = [kind for _, kind in _GAME_FIELDS]


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
