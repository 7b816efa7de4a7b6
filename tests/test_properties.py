"""Property-based tests (hypothesis): the maze state codec and edits on real procgen levels, and the spec loader.

The maze properties draw level seeds and random edit sequences; the spec properties throw random and
near-valid YAML data at `parse_spec` / `load_spec`. Both run against the real code paths (real procgen
states, real YAML files), so a broken codec, an edit that corrupts a state, or a validator that lets a
non-`SteerError` escape fails here.

No hypothesis example database is kept (`database=None`), so runs do not replay each other's failures;
hypothesis may still cache constants in its own self-gitignored `.hypothesis/` folder.
"""

from __future__ import annotations

import itertools
import math
import re
import tempfile
from dataclasses import dataclass, make_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steer.errors import SteerError, shown_key
from steer.maze.env import MAX_SEED, MODES, MazeRenderer, _procgen_env
from steer.maze.layout import CHEESE, EMPTY, WALL, Maze
from steer.net.vectors import EDIT_OPS, VECTOR_KINDS
from steer.run.options import (
    Options,
    coeff_option,
    coeffs_option,
    compose_items,
    control_seed_option,
    controls_option,
    layers_option,
    metrics_option,
    option,
    pairs_option,
    seeds_option,
    vector_option,
)
from steer.run.spec_values import MAX_COEFFS, ComposeItem, VectorSpec
from steer.run.specs import COMMON_KEYS, Spec, load_spec, parse_spec
from steer.studies import STUDIES

# One renderer per mode, built once for the whole module (each `level` call makes its own procgen env).
RENDERERS = {mode: MazeRenderer(mode) for mode in MODES}
WORLD_DIM = {"easy": 15, "hard": 25}

MAZE_SETTINGS = settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

seeds = st.integers(min_value=0, max_value=10_000)
modes = st.sampled_from(MODES)


# -- maze codec and edits -----------------------------------------------------------------------------

EDITS = ("remove_cheese", "cheese", "mouse", "wall", "open", "top_right_path")


def _inner_wallable(maze: Maze) -> list[tuple[int, int]]:
    lo, hi = maze.inner_bounds
    return [
        sq
        for sq in maze.open_squares()
        if lo <= sq[0] <= hi and lo <= sq[1] <= hi and sq != maze.mouse and sq != maze.cheese
    ]


def _changed_cells(before: Maze, after: Maze) -> set[tuple[int, int]]:
    rows, cols = np.nonzero(before.grid != after.grid)
    return {(int(r), int(c)) for r, c in zip(rows, cols, strict=True)}


def _apply_random_edit(maze: Maze, data: st.DataObject) -> Maze:
    """One random edit with a valid argument, checked against what that edit promises; returns the new maze."""
    op = data.draw(st.sampled_from(EDITS), label="op")
    if op == "remove_cheese":
        old = maze.cheese
        out = maze.without_cheese()
        assert out.cheese is None
        assert _changed_cells(maze, out) == (set() if old is None else {old})
        assert out.mouse == maze.mouse
    elif op == "cheese":
        choices = [sq for sq in maze.open_squares() if sq != maze.mouse]
        if not choices:
            return maze
        square = data.draw(st.sampled_from(choices), label="cheese square")
        out = maze.with_cheese(square)
        assert out.cheese == square and out.grid[square] == CHEESE
        old = maze.cheese
        assert _changed_cells(maze, out) <= {square} | ({old} if old is not None else set())
        if old is not None and old != square:
            assert out.grid[old] == EMPTY
        assert out.mouse == maze.mouse
    elif op == "mouse":
        square = data.draw(st.sampled_from(maze.open_squares()), label="mouse square")
        out = maze.with_mouse(square)
        assert out.mouse == square
        assert np.array_equal(out.grid, maze.grid)
    elif op == "wall":
        choices = _inner_wallable(maze)
        if not choices:
            return maze
        square = data.draw(st.sampled_from(choices), label="wall square")
        out = maze.with_wall(square)
        assert out.grid[square] == WALL
        assert _changed_cells(maze, out) == {square}
        assert out.cheese == maze.cheese and out.mouse == maze.mouse
    elif op == "open":
        world = maze.world_dim
        square = (
            data.draw(st.integers(0, world - 1), label="open row"),
            data.draw(st.integers(0, world - 1), label="open col"),
        )
        out = maze.with_open(square)
        assert out.grid[square] == EMPTY
        assert _changed_cells(maze, out) <= {square}
        assert out.cheese == (None if maze.cheese == square else maze.cheese)
        assert out.mouse == maze.mouse
    else:  # top_right_path
        if maze.maze_dim >= maze.world_dim:
            assert maze.top_right_path() == []
            with pytest.raises(SteerError, match="no path"):
                maze.with_top_right_path()
            return maze
        path = maze.top_right_path()
        out = maze.with_top_right_path()
        assert path and path[-1] == (maze.world_dim - 1, maze.world_dim - 1)
        assert all(out.grid[sq] == (EMPTY if maze.grid[sq] == WALL else maze.grid[sq]) for sq in path)
        assert _changed_cells(maze, out) <= set(path)
        # Only walls open: a cheese already on the path (from an earlier top_right_path) stays.
        assert out.cheese == maze.cheese
        # The path joins the inner top-right square to the world's top-right corner, one step at a time.
        chain = [maze.top_right_square, *path]
        assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1 for a, b in itertools.pairwise(chain))
        assert out.mouse == maze.mouse
    return out


def _assert_consistent(maze: Maze, original: Maze, original_bytes: bytes) -> bytes:
    raw = maze.to_bytes()
    assert len(raw) == len(original_bytes), "an edit changed the state's length"
    back = Maze.from_bytes(raw)
    assert np.array_equal(back.grid, maze.grid)
    assert back.mouse == maze.mouse
    assert back.to_bytes() == raw, "re-serialising a parsed edited state is not byte-identical"
    assert int((maze.grid == CHEESE).sum()) <= 1
    assert back.cheese == maze.cheese
    assert maze.is_open(maze.mouse) and maze.grid[maze.mouse] != WALL
    assert (maze.world_dim, maze.maze_dim) == (original.world_dim, original.maze_dim)
    assert (back.world_dim, back.maze_dim) == (original.world_dim, original.maze_dim)
    assert maze.grid.shape == original.grid.shape == back.grid.shape
    assert set(np.unique(maze.grid).tolist()) <= {WALL, EMPTY, CHEESE}
    # Everything but the grid and the player's position is carried over untouched.
    assert back.state.game == original.state.game and back.state.basic == original.state.basic
    assert len(back.state.entities) == len(original.state.entities)
    return raw


@MAZE_SETTINGS
@given(seed=seeds, mode=modes)
def test_unedited_level_round_trips_byte_for_byte(seed: int, mode: str) -> None:
    maze = RENDERERS[mode].level(seed)
    raw = maze.to_bytes()
    again = Maze.from_bytes(raw)
    assert again.to_bytes() == raw
    assert np.array_equal(again.grid, maze.grid) and again.mouse == maze.mouse
    assert maze.world_dim == WORLD_DIM[mode] and maze.grid.shape == (WORLD_DIM[mode],) * 2
    assert 3 <= maze.maze_dim <= maze.world_dim and maze.maze_dim % 2 == 1
    assert maze.mouse == maze.start_square
    assert maze.cheese is not None


@MAZE_SETTINGS
@given(seed=seeds, mode=modes, data=st.data())
def test_random_edit_sequences_keep_the_state_consistent(seed: int, mode: str, data: st.DataObject) -> None:
    original = RENDERERS[mode].level(seed)
    original_bytes = original.to_bytes()
    frozen_grid = original.grid.copy()
    maze = original
    for _ in range(data.draw(st.integers(1, 12), label="number of edits")):
        maze = _apply_random_edit(maze, data)
        _assert_consistent(maze, original, original_bytes)
    # The level the edits started from is untouched (edits return new values; grids are read-only).
    assert np.array_equal(original.grid, frozen_grid) and original.to_bytes() == original_bytes
    assert not maze.grid.flags.writeable


@MAZE_SETTINGS
@given(seed=seeds, mode=modes, data=st.data())
def test_mouse_states_match_moving_the_mouse(seed: int, mode: str, data: st.DataObject) -> None:
    maze = RENDERERS[mode].level(seed)
    squares = data.draw(st.lists(st.sampled_from(maze.open_squares()), min_size=1, max_size=5), label="squares")
    states = maze.with_mouse_states(squares)
    assert len(states) == len(squares)
    for square, state in zip(squares, states, strict=True):
        back = Maze.from_bytes(state)
        assert back.mouse == square
        assert np.array_equal(back.grid, maze.grid)
        assert len(state) == len(maze.to_bytes())
        assert Maze.from_bytes(maze.with_mouse(square).to_bytes()).mouse == square


@MAZE_SETTINGS
@given(seed=seeds, mode=modes, data=st.data())
def test_invalid_edit_arguments_are_steer_errors(seed: int, mode: str, data: st.DataObject) -> None:
    """Any square, in or out of the world, either edits the maze or raises SteerError (never IndexError)."""
    maze = RENDERERS[mode].level(seed)
    world = maze.world_dim
    walls = [(int(r), int(c)) for r, c in zip(*np.nonzero(maze.grid == WALL), strict=True)]
    square = data.draw(
        st.sampled_from([maze.mouse, maze.cheese])
        | st.sampled_from(walls)
        | st.sampled_from(maze.open_squares())
        | st.tuples(st.integers(-3, world + 3), st.integers(-3, world + 3)),
        label="square",
    )
    op = data.draw(st.sampled_from(["cheese", "mouse", "wall", "open"]))
    method = {"cheese": maze.with_cheese, "mouse": maze.with_mouse, "wall": maze.with_wall, "open": maze.with_open}
    in_world = 0 <= square[0] < world and 0 <= square[1] < world
    should_fail = (
        not in_world
        or (op in ("cheese", "mouse") and maze.grid[square] == WALL)
        or (op in ("cheese", "wall") and square == maze.mouse)
    )
    if should_fail:
        with pytest.raises(SteerError):
            method[op](square)
    else:
        edited = method[op](square)
        Maze.from_bytes(edited.to_bytes())


@settings(max_examples=10, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=seeds, mode=modes, data=st.data())
def test_edited_states_survive_procgen_set_state(seed: int, mode: str, data: st.DataObject) -> None:
    original = RENDERERS[mode].level(seed)
    maze = original
    for _ in range(data.draw(st.integers(1, 8), label="number of edits")):
        maze = _apply_random_edit(maze, data)
    raw = maze.to_bytes()
    env = _procgen_env(seed, mode)
    env.callmethod("set_state", [raw])
    got = env.callmethod("get_state")[0]
    back = Maze.from_bytes(got)
    assert np.array_equal(back.grid, maze.grid)
    assert back.mouse == maze.mouse
    assert back.cheese == maze.cheese
    # procgen hands back exactly the bytes it was given.
    assert got == raw


# -- spec loader ----------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Everything(Options):
    """Every key the shared parsers read (steer.run.options), each optional: the generic spec the properties below
    throw data at. Each study then parses the same data with its own options."""

    vector: VectorSpec | None = vector_option(default=None)
    coeff: float | None = coeff_option(default=None)
    coeffs: tuple[float, ...] = coeffs_option(default=())
    controls: tuple[str, ...] = controls_option()
    control_seed: int = control_seed_option()
    metrics: tuple[str, ...] = metrics_option()
    vectors: tuple[ComposeItem, ...] = option(compose_items, beside=True, default=())
    sources: tuple[int, ...] = seeds_option(sample=True)
    targets: tuple[int, ...] = seeds_option(sample=True)
    show: tuple[tuple[int, int], ...] = pairs_option()
    grid_seeds: tuple[int, ...] = seeds_option()
    layers: tuple[str, ...] = layers_option()


def passing(keys: tuple[str, ...], base: type[Options] = Options) -> type[Options]:
    """An options class that keeps `keys` as written beside `base`'s (a study's own values need its files)."""
    extra = [(k, Any, option(lambda value, where: value, default=None)) for k in keys if k not in base.key_names()]
    return make_dataclass("Passing", extra, bases=(base,), frozen=True, kw_only=True)


TOP_KEYS = (*COMMON_KEYS, "seeds", *Everything.key_names())
VECTOR_KEYS = ("kind", "source_seed", "mouse", "a", "b", "file")
SUB_KEYS = ("from", "to", "step", "label", *EDIT_OPS)
# Keys a study reads alone are field paths too (`steer probe` requires its own `activations`).
OWN_KEYS = tuple(sorted({k for study in STUDIES.values() for k in study.options.key_names()} - set(TOP_KEYS)))
KNOWN_KEYS = (*TOP_KEYS, *VECTOR_KEYS, *SUB_KEYS, *OWN_KEYS)

# A field path as the spec code writes it: known key names joined by '.', each with any number of [i] indexes
# (`seeds[3]`, `vector.a[0].cheese[1]`, `show[2][0]`, `vectors[1].vector.kind`).
_SEGMENT = r"(?:{})(?:\[\d+\])*".format("|".join(re.escape(k) for k in sorted(set(KNOWN_KEYS), key=len, reverse=True)))
PATH_RE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})*")
PREFIX_RE = re.compile(rf"^(?P<where>the spec|spec|{PATH_RE.pattern}): \S")
UNKNOWN_KEY = ": unknown key."  # then, maybe, "Did you mean `…`?", then "Valid keys"


def _all_keys(data: Any, seen: set[int] | None = None) -> set[str]:
    """Every mapping key anywhere in `data` as an unknown-key message may name it: as is when printable
    (`str()`), else escaped (`shown_key`)."""
    seen = set() if seen is None else seen
    if id(data) in seen:
        return set()
    seen.add(id(data))
    keys: set[str] = set()
    if isinstance(data, dict):
        for k, v in data.items():
            keys |= {str(k), shown_key(k)}
            keys |= _all_keys(v, seen)
    elif isinstance(data, list):
        for v in data:
            keys |= _all_keys(v, seen)
    return keys


def assert_well_formed(message: str, data: Any) -> None:
    """A SteerError message starts with the field path it is about (or 'the spec' / 'spec'), then ': '."""
    assert message.strip(), "empty SteerError message"
    if UNKNOWN_KEY in message:
        # `{path}.{key}: unknown key. Valid keys under {path}: ...` or, at the top level, `{key}: unknown key...`
        head = message[: message.index(UNKNOWN_KEY)]
        under = re.search(r"Valid keys under (.+?): ", message)
        if under is None:
            assert head in _all_keys(data), f"unknown-key message names a key not in the data: {message!r}"
        else:
            path = under.group(1)
            assert PATH_RE.fullmatch(path), f"not a field path: {path!r} in {message!r}"
            assert head.startswith(path + "."), message
            assert head[len(path) + 1 :] in _all_keys(data), message
        return
    assert PREFIX_RE.match(message), f"SteerError message does not start with a field path: {message!r}"


def check_parsed(spec: Spec) -> None:
    """What parse_spec promises about a spec it accepts (its shared keys, and Everything's)."""
    o = spec.options
    assert spec.seeds and len(set(spec.seeds)) == len(spec.seeds)
    assert all(isinstance(s, int) and 0 <= s <= MAX_SEED for s in spec.seeds)
    assert 1 <= spec.batch_size <= 65536
    assert spec.distribution_mode in (None, *MODES)
    assert spec.name and (spec.layer is None or spec.layer)
    for op, square in spec.target_edits:
        assert op in EDIT_OPS and (square is None) == (not EDIT_OPS[op])
    if not isinstance(o, Everything):
        return
    assert o.coeff is None or math.isfinite(o.coeff)
    assert 1 <= len(o.coeffs) <= MAX_COEFFS or o.coeffs == ()
    assert all(math.isfinite(c) for c in o.coeffs) and len(set(o.coeffs)) == len(o.coeffs)
    for item in o.vectors:
        assert math.isfinite(item.coeff)
    if o.vector is not None and o.vector.pair is not None:
        assert o.vector.pair.kind in VECTOR_KINDS


def parse_or_steer_error(data: Any) -> Spec | None:
    try:
        spec = parse_spec(data, options=Everything)
    except SteerError as e:
        assert_well_formed(str(e), data)
        return None
    check_parsed(spec)
    # Each command parses the same data with its own options: it accepts it, or refuses it with a SteerError
    # naming a field (a key it does not read, a required key missing, one of its own checks).
    for study in STUDIES.values():
        try:
            parsed = study.parse(data)
        except SteerError as e:
            assert_well_formed(str(e), data)
        else:
            assert all(k in study.allowed_keys for k in data)
            check_parsed(parsed)
    return spec


# Junk: anything YAML can hold, nested.
# Integers past float range (a long run of digits in YAML is an int) and floats whose differences overflow.
huge_ints = st.sampled_from([10**400, -(10**400), 2**1024, 2**1024 - 1])
big_ints = st.integers() | huge_ints | st.sampled_from([2**63, -(2**31) - 1])
extreme_floats = st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 1e-300, -1e-300, 5e-324])
scalars = (
    st.none()
    | st.booleans()
    | big_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["cheese", "easy", "hard", "custom", "remove_cheese", "1.5", "nan", "-inf", "1e400", " "])
)
keys = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8) | st.integers(-5, 5) | st.booleans() | st.none()
junk = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5),
    max_leaves=16,
)

# Valid values for every field of a spec.
names = st.text(min_size=1, max_size=10).filter(str.strip)
valid_seed = st.integers(0, MAX_SEED)
valid_seed_lists = st.lists(valid_seed | st.integers(0, 50), min_size=1, max_size=5, unique=True)
valid_seed_ranges = st.integers(0, MAX_SEED - 60).flatmap(
    lambda a: st.fixed_dictionaries({"from": st.just(a), "to": st.integers(a, a + 50)})
)
valid_seeds = valid_seed_lists | valid_seed_ranges
valid_squares = st.lists(st.integers(0, 1000), min_size=2, max_size=2)
valid_edits = st.lists(
    st.sampled_from(["remove_cheese", "top_right_path"])
    | st.sampled_from(["cheese", "mouse", "wall", "open"]).flatmap(
        lambda op: st.fixed_dictionaries({op: valid_squares})
    ),
    max_size=4,
)
valid_numbers = st.integers(-5, 5) | st.floats(-1e6, 1e6) | st.sampled_from(["1.5", "-2", "0.25", "3"])
valid_inline = st.one_of(
    st.fixed_dictionaries(
        {"kind": st.sampled_from(["cheese", "top_right"])},
        optional={"source_seed": valid_seed, "mouse": valid_squares},
    ),
    st.fixed_dictionaries(
        {"kind": st.just("custom"), "a": valid_edits.filter(bool)},
        optional={"b": valid_edits, "source_seed": valid_seed, "mouse": valid_squares},
    ),
    st.fixed_dictionaries({"kind": st.just("custom"), "b": valid_edits.filter(bool)}),
)
valid_vectors = valid_inline | st.fixed_dictionaries({"file": names})
valid_coeff_lists = st.lists(st.floats(-100, 100), min_size=1, max_size=6, unique=True)
valid_coeff_ranges = st.builds(
    lambda a, step, n: {"from": a, "to": a + n * step, "step": step},
    st.floats(-5, 5),
    st.sampled_from([0.25, 0.5, 1, 2, -0.5, -1]),
    st.integers(0, 20),
)
valid_compose = st.lists(
    st.fixed_dictionaries(
        {"vector": valid_vectors, "coeff": valid_numbers},
        optional={"layer": names, "label": names},
    ),
    min_size=1,
    max_size=3,
)
VALID: dict[str, st.SearchStrategy[Any]] = {
    "name": st.from_regex(r"[A-Za-z0-9._-]{1,10}", fullmatch=True).filter(lambda s: s not in (".", "..")),
    "checkpoint": names,
    "distribution_mode": st.sampled_from(MODES),
    "layer": st.sampled_from(["block2.res1.resadd_out", "embed"]) | names,
    "seeds": valid_seeds,
    "target_edits": valid_edits,
    "vector": valid_vectors,
    "coeff": valid_numbers,
    "batch_size": st.integers(1, 65536),
    "vectors": valid_compose,
    "coeffs": valid_coeff_lists | valid_coeff_ranges,
    "sources": valid_seeds,
    "targets": valid_seeds,
    "show": st.lists(st.lists(valid_seed, min_size=2, max_size=2), max_size=3),
    "layers": st.just("all") | st.lists(names, min_size=1, max_size=3),
}
valid_specs = st.fixed_dictionaries(
    {"seeds": VALID["seeds"]}, optional={k: v for k, v in VALID.items() if k != "seeds"}
)


# Near misses: plausible values that are wrong in one way or another (off by one, wrong type, duplicates,
# missing parts), nested so that the inner fields go wrong too.
def near(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a plausible value, sometimes junk."""
    return st.one_of(valid, valid, junk)


near_seed = st.integers(-2, 2) | st.integers(MAX_SEED - 1, MAX_SEED + 2) | st.integers(0, 5) | big_ints
near_squares = st.lists(st.integers(-2, 1002), min_size=2, max_size=2) | st.lists(st.integers(0, 9), max_size=3)
near_edit_items = (
    st.sampled_from(list(EDIT_OPS))
    | st.dictionaries(st.sampled_from(list(EDIT_OPS)), near(near_squares), min_size=1, max_size=1)
    | st.dictionaries(st.sampled_from(list(EDIT_OPS)) | st.text(max_size=6), near(near_squares), max_size=2)
)
near_edits = st.lists(near(near_edit_items), max_size=4)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf, "nan", "inf", "-inf", "1e400", "-1e999"])
numbers = st.one_of(
    non_finite,
    huge_ints,
    extreme_floats,
    st.integers(-5, 5),
    st.floats(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    big_ints,
    st.sampled_from(["1.5", "-2", "x", "", "1,5", True, False, None, [], {}]),
)
near_inline = st.fixed_dictionaries(
    {},
    optional={
        "kind": near(st.sampled_from(VECTOR_KINDS)),
        "source_seed": near(near_seed),
        "mouse": near(near_squares),
        "a": near(near_edits),
        "b": near(near_edits),
    },
)
# Vector file names include one too long for the file system and one with a NUL (only load_spec looks them up).
file_names = st.text(max_size=20) | st.sampled_from(["v" * 300 + ".pt", "a\0b.pt", "/", ".", "~/v.pt"])
near_file = st.fixed_dictionaries({"file": near(file_names)}, optional={"kind": junk})
near_vectors = near(near_inline | near_file)
near_seeds = st.lists(near(near_seed), max_size=5) | st.fixed_dictionaries(
    {}, optional={"from": near(near_seed), "to": near(near_seed | st.integers(0, 200_000))}
)
near_coeffs = st.lists(near(numbers), max_size=5) | st.fixed_dictionaries(
    {}, optional={"from": near(numbers), "to": near(numbers), "step": near(numbers)}
)
near_compose = st.lists(
    near(
        st.fixed_dictionaries(
            {},
            optional={
                "vector": near_vectors,
                "coeff": near(numbers),
                "layer": near(st.text(max_size=10)),
                "label": near(st.text(max_size=10)),
            },
        )
    ),
    max_size=3,
)
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(max_size=10),
    "checkpoint": st.text(max_size=10),
    "distribution_mode": st.sampled_from(["Easy", "exploration", "memory", ""]),
    "layer": st.sampled_from([" ", "", "block2.res1.resadd_out"]),
    "seeds": near_seeds,
    "target_edits": near_edits,
    "vector": near_vectors,
    "coeff": numbers,
    "batch_size": st.integers(-1, 1) | st.integers(65535, 65537) | numbers,
    "vectors": near_compose,
    "coeffs": near_coeffs,
    "sources": near_seeds,
    "targets": near_seeds,
    "show": st.lists(near(st.lists(near(near_seed), min_size=1, max_size=3)), max_size=3),
    "layers": st.sampled_from(["All", "", []]) | st.lists(near(st.sampled_from(["embed", " ", ""])), max_size=3),
}


def _broken(key: str) -> st.SearchStrategy[Any]:
    """Wrong values for a top-level key (keys added to the spec format later get junk)."""
    return NEAR.get(key, junk) | junk


# A valid spec with one to three of its fields replaced by near misses or junk, and now and then a stray key.
mutations = st.lists(st.sampled_from(TOP_KEYS), min_size=1, max_size=3, unique=True).flatmap(
    lambda ks: st.fixed_dictionaries({k: _broken(k) for k in ks})
)
specs = st.builds(lambda base, bad: {**base, **bad}, valid_specs, mutations) | st.builds(
    lambda base, k, v: {**base, k: v}, valid_specs, keys, junk
)

SPEC_SETTINGS = settings(
    max_examples=500,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SPEC_SETTINGS
@given(data=junk | st.dictionaries(keys, junk, max_size=6))
def test_parse_spec_on_junk_raises_only_steer_errors_naming_a_field(data: Any) -> None:
    parse_or_steer_error(data)


@settings(SPEC_SETTINGS, max_examples=1000)
@given(data=specs)
def test_parse_spec_on_near_valid_specs_raises_only_steer_errors_naming_a_field(data: Any) -> None:
    parse_or_steer_error(data)


any_floats = st.floats(allow_nan=False, allow_infinity=False)
range_numbers = any_floats | extreme_floats | numbers
number_fields = st.one_of(
    st.builds(lambda v: {"coeff": v}, numbers),
    st.builds(lambda vs: {"coeffs": vs}, st.lists(numbers, min_size=1, max_size=4)),
    st.builds(lambda a, b, c: {"coeffs": {"from": a, "to": b, "step": c}}, range_numbers, range_numbers, range_numbers),
    st.builds(lambda v: {"vectors": [{"vector": {"kind": "cheese"}, "coeff": v}]}, numbers),
)


@settings(SPEC_SETTINGS, max_examples=400)
@given(fields=number_fields)
def test_numeric_fields_accept_finite_numbers_and_refuse_the_rest(fields: dict[str, Any]) -> None:
    """coeff, coeffs (list or range) and vectors[i].coeff: a finite float back, or a SteerError naming the field."""
    spec = parse_or_steer_error({"seeds": [0], **fields})
    if spec is None:
        return
    if fields.get("coeff") is not None:  # None reads as absent
        assert spec.options.coeff is not None and math.isfinite(spec.options.coeff)
    if isinstance(fields.get("coeffs"), dict):
        assert 1 <= len(spec.options.coeffs) <= MAX_COEFFS
        assert spec.options.coeffs[0] == pytest.approx(round(float(fields["coeffs"]["from"]), 12), rel=1e-9)


def _expected_seeds(value: Any) -> tuple[int, ...]:
    return tuple(range(value["from"], value["to"] + 1)) if isinstance(value, dict) else tuple(value)


def _expected_edits(value: list[Any]) -> tuple[Any, ...]:
    return tuple((e, None) if isinstance(e, str) else (next(iter(e)), tuple(next(iter(e.values())))) for e in value)


@SPEC_SETTINGS
@given(data=valid_specs)
def test_valid_specs_parse_to_what_they_say(data: dict[str, Any]) -> None:
    spec = parse_spec(data, options=Everything)
    check_parsed(spec)
    assert spec.seeds == _expected_seeds(data["seeds"])
    assert spec.name == (data["name"].strip() if "name" in data else "experiment")
    assert spec.checkpoint == (data["checkpoint"].strip() if "checkpoint" in data else None)
    assert spec.distribution_mode == data.get("distribution_mode")
    assert spec.layer == (data["layer"].strip() if "layer" in data else None)  # None: not given
    if "batch_size" in data:
        assert spec.batch_size == data["batch_size"]
    assert spec.options.coeff == (float(data["coeff"]) if "coeff" in data else None)
    assert spec.target_edits == _expected_edits(data.get("target_edits", []))
    assert spec.options.sources == (_expected_seeds(data["sources"]) if "sources" in data else ())
    assert spec.options.targets == (_expected_seeds(data["targets"]) if "targets" in data else ())
    assert spec.options.show == tuple(tuple(pair) for pair in data.get("show", []))
    layers = data.get("layers", "all")
    assert spec.options.layers == (() if layers == "all" else tuple(name.strip() for name in layers))
    assert len(spec.options.vectors) == len(data.get("vectors", []))
    for item, raw in zip(spec.options.vectors, data.get("vectors", []), strict=True):
        assert item.coeff == float(raw["coeff"])
        assert item.layer == (raw["layer"].strip() if "layer" in raw else None)
    if "vector" in data:
        raw = data["vector"]
        assert spec.options.vector is not None
        if "file" in raw:
            assert spec.options.vector.file == Path(raw["file"].strip()) and spec.options.vector.pair is None
        else:
            assert spec.options.vector.pair is not None and spec.options.vector.pair.kind == raw["kind"]
            assert spec.options.vector.source_seed == raw.get("source_seed")
            assert spec.options.vector.pair.mouse == (tuple(raw["mouse"]) if "mouse" in raw else None)
            assert spec.options.vector.pair.a == _expected_edits(raw.get("a", []))
            assert spec.options.vector.pair.b == _expected_edits(raw.get("b", []))
    else:
        assert spec.options.vector is None
    coeffs = data.get("coeffs")
    if isinstance(coeffs, list):
        assert spec.options.coeffs == tuple(float(c) for c in coeffs)
    elif isinstance(coeffs, dict):
        # An inclusive range: starts at 'from', steps by 'step', and ends at 'to' (up to float rounding).
        assert spec.options.coeffs[0] == pytest.approx(coeffs["from"], abs=1e-9)
        assert spec.options.coeffs[-1] == pytest.approx(coeffs["to"], abs=1e-6)
        gaps = [b - a for a, b in itertools.pairwise(spec.options.coeffs)]
        assert all(g == pytest.approx(coeffs["step"], abs=1e-9) for g in gaps)


@pytest.mark.parametrize(
    "data",
    [
        {"seeds": [0], "coeff": 10**400},  # a 401-digit YAML integer
        {"seeds": [0], "coeffs": [10**400]},
        {"seeds": [0], "vectors": [{"vector": {"kind": "cheese"}, "coeff": 10**400}]},
        {"seeds": [0], "coeffs": {"from": -1e308, "to": 1e308, "step": 1}},  # to - from overflows to inf
        {"seeds": [0], "coeffs": {"from": 0, "to": 1e300, "step": 1e-300}},  # (to - from) / step overflows
    ],
    ids=["coeff-huge-int", "coeffs-huge-int", "vectors-coeff-huge-int", "coeffs-span-inf", "coeffs-count-inf"],
)
def test_huge_numbers_are_steer_errors(data: dict[str, Any]) -> None:
    """Numbers too large for a float are user errors, not OverflowError (found by the properties above)."""
    with pytest.raises(SteerError) as info:
        parse_spec(data, options=Everything)
    assert_well_formed(str(info.value), data)


@pytest.mark.parametrize(
    "rng",
    [{"from": 1e-200, "to": 0, "step": 1e-200}, {"from": 0, "to": -1e-200, "step": 1e-200}],
    ids=["down", "down-from-zero"],
)
def test_a_coefficient_range_is_never_empty(rng: dict[str, float]) -> None:
    """(to - from) * step underflows to -0.0 for tiny values, so the sign check passes with the wrong sign."""
    try:
        spec = parse_spec({"seeds": [0], "coeffs": rng}, options=Everything)
    except SteerError as e:
        assert_well_formed(str(e), rng)
    else:
        assert spec.options.coeffs, "an accepted coefficient range holds no coefficients"


@pytest.mark.parametrize(
    "data",
    [
        {"seeds": [0], "vector": {"file": None}},
        {"seeds": [0], "vectors": [{"vector": {"file": None}, "coeff": 1}]},
    ],
    ids=["vector", "vectors"],
)
def test_an_empty_vector_file_is_a_steer_error(data: dict[str, Any]) -> None:
    """`vector: {file: }` names no file; it must not silently become the path '.' (the working folder)."""
    with pytest.raises(SteerError, match=r"vector\.file: "):
        parse_spec(data, options=Everything)


def test_valid_example_specs_parse() -> None:
    """The properties above are not vacuous: the shipped example specs load."""
    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    specs_seen = 0
    for path in configs:
        if "experiments" in (yaml.safe_load(path.read_text()) or {}):
            continue  # a batch of specs (steer/batch/), not a spec
        # A study's own keys (probe's `activations` names an output folder) are kept as written: the properties
        # checked here are the shared keys'. A config named after a study (compose-map.yaml) may use a shared
        # key its own way (compose-map's `vectors` have no coeff), so it is read with that study's keys alone.
        keys = STUDIES[path.stem].options.key_names() if path.stem in STUDIES else OWN_KEYS
        check_parsed(load_spec(path, passing(keys, Options if path.stem in STUDIES else Everything)))
        specs_seen += 1
    assert specs_seen >= 3


# load_spec: YAML text built from fragments (valid and broken), arbitrary text and bytes, and dumped junk.
yaml_fragments = st.sampled_from(
    [
        "seeds:",
        " [0, 1, 2]",
        " {from: 0, to: 3}",
        "\n",
        "  ",
        "- ",
        "vector:",
        "  kind: cheese",
        "  file: v.pt",
        "coeff:",
        " -1",
        " .nan",
        " 1e400",
        " 1.0e400",
        "coeffs: [1, 2]",
        "target_edits: [remove_cheese]",
        "{",
        "}",
        "[",
        "]",
        ": ",
        "? ",
        "&a ",
        "*a",
        "*b",
        "!!binary ",
        "!!set ",
        "!!python/object:os.system ",
        "'",
        '"',
        "\t",
        "#",
        "%YAML 1.1\n",
        "---\n",
        "...\n",
        "name: 2020-01-01",
        "0x1F",
        "~",
        "yes",
        "\\x00",
    ]
)
yaml_texts = st.lists(yaml_fragments | st.text(max_size=5), max_size=12).map("".join)
plain_texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)


def _read_back(content: str | bytes) -> Any:
    """What YAML makes of `content`, for checking unknown-key messages against its keys (None if unreadable)."""
    try:
        return yaml.safe_load(content)
    except Exception:
        return None


def _load_from(content: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "spec.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        try:
            spec = load_spec(path)
        except SteerError as e:
            assert_well_formed(str(e), _read_back(content))
            return
        check_parsed(spec)
        assert spec.path == path


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=yaml_texts | plain_texts | st.binary(max_size=40))
def test_load_spec_on_random_text_raises_only_steer_errors(content: str | bytes) -> None:
    _load_from(content)


@settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=specs | junk)
def test_load_spec_on_dumped_data_raises_only_steer_errors(data: Any) -> None:
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return
    _load_from(text)


def test_load_spec_with_a_long_vector_file_name_is_a_steer_error() -> None:
    """A relative vector file name longer than the OS allows is a user error, not OSError (found above)."""
    _load_from(yaml.safe_dump({"seeds": [0], "vector": {"file": "v" * 300 + ".pt"}}))
