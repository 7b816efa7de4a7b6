"""Samples of mazes in a spec: a list of seeds, a range `{from, to}`, or a rule that draws the first `count`
mazes from `from` passing its filters (`where: {decision_square, smaller_than_world, maze_dims}`, a
`per_maze_dim` size mix, the `mode` the filters look at). The seeds a rule drew remember that mode
(`DrawnSeeds`), so a run in the other mode is refused (steer.run.specs.check_seed_modes)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from steer.errors import SteerError, excerpt
from steer.maze.env import MAX_SEED, MODES, MazeRenderer
from steer.run.spec_fields import _Fields, _type_name, integer

MAX_SEEDS = 100_000


class DrawnSeeds(tuple):
    """Seeds drawn by a rule whose filters looked at the mazes: `mode` is the environment mode they were drawn in,
    which the run must be in too (`check_seed_modes`)."""

    mode: str


SEED_RULE_KEYS = ("from", "to", "count", "where", "per_maze_dim", "mode")
SEED_FILTERS = ("decision_square", "smaller_than_world", "maze_dims")


@lru_cache(maxsize=200_000)
def maze_facts(mode: str, seed: int) -> tuple[int, int, bool]:
    """(maze size, world size, has a decision square) of a level: what seed rules filter on. ~1 ms a level."""
    maze = _renderer(mode).level(seed)
    return maze.maze_dim, maze.world_dim, maze.decision_square() is not None


@lru_cache(maxsize=2)
def _renderer(mode: str) -> MazeRenderer:
    return MazeRenderer(mode)


def _seed_rule(value: dict[str, Any], where: str) -> tuple[int, ...]:
    """`{from, count, where: {...}, per_maze_dim: {...}, to, mode}`: the first mazes from `from` on that pass the
    filters, `count` of them, or `per_maze_dim` of each maze size (a size mix, grouped by size in the order it
    lists them), never past `to`. Filters: `decision_square`, `smaller_than_world` (true or false), `maze_dims`.

    Kept whole: the rule's keys are checked and then drawn from in one pass over the seeds."""
    f = _Fields(value, where, SEED_RULE_KEYS)
    first, last = f.get_int("from"), f.get_int("to")
    if first is None:
        raise SteerError(f"{where}.from: missing; a seed rule draws mazes from this seed on: {{from: 0, count: 50}}.")
    last = min(MAX_SEED, first + MAX_SEEDS - 1) if last is None else last
    if last < first:
        raise SteerError(f"{where}: 'to' ({last}) is below 'from' ({first}); the range would be empty.")
    quotas: dict[int, int] | None = None
    if f.has("per_maze_dim"):
        raw = f.data["per_maze_dim"]
        if not isinstance(raw, dict) or not raw:
            raise SteerError(
                f"{f.where('per_maze_dim')}: expected a mapping of maze size to count, e.g. {{3: 3, 9: 3}}, "
                f"got {excerpt(raw)}."
            )
        quotas = {
            integer(k, f"{f.where('per_maze_dim')} key {excerpt(k)}", 1, 99): integer(
                v, f"{f.where('per_maze_dim')}.{k}", 1
            )
            for k, v in raw.items()
        }
    count = f.get_int("count", low=1, high=MAX_SEEDS)
    if count is None and quotas is None:
        raise SteerError(f"{where}.count: missing; say how many mazes to draw, e.g. count: 50 (or per_maze_dim).")
    if quotas is not None and count is not None and count != sum(quotas.values()):
        raise SteerError(
            f"{where}.count: {count} is not the {sum(quotas.values())} mazes per_maze_dim asks for; drop one of them."
        )
    count = sum(quotas.values()) if quotas is not None else count
    assert count is not None
    filters = _Fields(f.data.get("where") or {}, f.where("where"), SEED_FILTERS)
    want_ds = filters.get_bool("decision_square") if filters.has("decision_square") else None
    smaller = filters.get_bool("smaller_than_world") if filters.has("smaller_than_world") else None
    dims = None
    if filters.has("maze_dims"):
        raw = filters.data["maze_dims"]
        if not isinstance(raw, list) or not raw:
            raise SteerError(f"{filters.where('maze_dims')}: expected a list of maze sizes, e.g. [9, 11, 13].")
        dims = {integer(d, f"{filters.where('maze_dims')}[{i}]", 1, 99) for i, d in enumerate(raw)}
    mode = f.get_choice("mode", MODES, "easy")
    assert mode is not None
    if want_ds is None and smaller is None and dims is None and quotas is None:
        if first + count - 1 > last:
            raise SteerError(f"{where}: {count} seeds from {first} run past 'to' ({last}).")
        return tuple(range(first, first + count))  # no filter looks at a maze: the same as {from, to}
    drawn: list[int] = []
    left = dict(quotas) if quotas is not None else None
    for seed in range(first, last + 1):
        dim, world, has_ds = maze_facts(mode, seed)
        if (want_ds is not None and has_ds != want_ds) or (smaller is not None and (dim < world) != smaller):
            continue
        if (dims is not None and dim not in dims) or (left is not None and left.get(dim, 0) == 0):
            continue
        drawn.append(seed)
        if left is not None:
            left[dim] -= 1
        if len(drawn) == count:
            if quotas is not None:  # a size mix comes grouped by size, in the order per_maze_dim lists them
                order = list(quotas)
                drawn.sort(key=lambda sd: (order.index(maze_facts(mode, sd)[0]), sd))
            out = DrawnSeeds(drawn)
            out.mode = mode
            return out
    raise SteerError(
        f"{where}: only {len(drawn)} of the {count} mazes this rule asks for are among seeds {first}-{last} "
        f"({mode} mode); raise 'to' or loosen 'where'/'per_maze_dim'."
    )


def is_seed_rule(value: Any) -> bool:
    """A seeds mapping that draws mazes by a rule (`count`, filters, a size mix), not a plain {from, to} range."""
    return isinstance(value, dict) and any(k in value for k in ("count", "where", "per_maze_dim", "mode"))


def parse_seeds(value: Any, where: str = "seeds") -> tuple[int, ...]:
    if value is None:
        raise SteerError(f"{where}: missing. Give a list of level seeds, e.g. [0, 1, 2], or {{from: 0, to: 99}}.")
    if is_seed_rule(value):
        return _seed_rule(value, where)
    if isinstance(value, dict):
        f = _Fields(value, where, ("from", "to"))
        first, last = f.get_int("from"), f.get_int("to")
        if first is None or last is None:
            raise SteerError(
                f"{where}: a seed range needs both 'from' and 'to', e.g. {{from: 0, to: 99}}, or a rule "
                "{from: 0, count: 50, where: {decision_square: true}}."
            )
        if last < first:
            raise SteerError(f"{where}: 'to' ({last}) is below 'from' ({first}); the range would be empty.")
        if last - first + 1 > MAX_SEEDS:
            raise SteerError(f"{where}: {last - first + 1} seeds is more than the {MAX_SEEDS} allowed in one spec.")
        return tuple(range(first, last + 1))
    if not isinstance(value, list):
        raise SteerError(
            f"{where}: expected a list of integers or {{from: A, to: B}}, got {_type_name(value)} ({excerpt(value)})."
        )
    if not value:
        raise SteerError(f"{where}: the list is empty; name at least one level seed.")
    seeds = tuple(integer(v, f"{where}[{i}]") for i, v in enumerate(value))
    seen: set[int] = set()
    for i, s in enumerate(seeds):
        if s in seen:
            raise SteerError(f"{where}[{i}]: seed {s} is listed twice.")
        seen.add(s)
    return seeds
