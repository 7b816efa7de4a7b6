"""The parsers of single spec values: seeds, edits, vectors, coefficients, seed pairs, layers, controls.

Each takes the raw YAML value and the field path it came from (`where`), and returns the parsed value or
raises a SteerError that names that path, the value found and what would be valid. `_Fields` reads one
mapping (the spec itself, `vector`, a seed range) with the same kind of messages.

They live apart from steer/run/specs.py, which assembles them into a `Spec`: a study declaring keys only it
reads passes these parsers (or its own) as the keys' parsers, and none of them needs the whole spec.
steer.run.specs re-exports every public name here, so `from steer.run.specs import parse_seeds` keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt, shown_key
from steer.maze.env import MAX_SEED, MODES, MazeRenderer
from steer.maze.layout import Square
from steer.net.vectors import EDIT_OPS, VECTOR_KINDS, Edit, PairSpec

MAX_SEEDS = 100_000


@dataclass(frozen=True)
class VectorSpec:
    pair: PairSpec | None = None  # inline
    source_seed: int | None = None  # None: each target's own vector
    file: Path | None = None  # a saved vector instead
    source_seeds: tuple[int, ...] | None = None  # the mean of the pair's vectors over these mazes


@dataclass(frozen=True)
class ComposeItem:
    """One vector of a composition: its own coefficient, and a layer (None: the spec's layer or the file's)."""

    vector: VectorSpec
    coeff: float
    layer: str | None = None
    label: str | None = None


def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "empty"}.get(
        type(value), type(value).__name__
    )


class _Fields:
    """A mapping being validated: typed getters that name the field path, and a check for leftovers."""

    def __init__(self, data: Any, path: str, allowed: tuple[str, ...]) -> None:
        where = path or "the spec"
        if not isinstance(data, dict):
            raise SteerError(
                f"{where}: expected a mapping of keys to values, got {_type_name(data)} ({excerpt(data)})."
            )
        unknown = [k for k in data if k not in allowed]
        if unknown:
            key = unknown[0]
            raise SteerError(
                f"{self._join(path, shown_key(key))}: unknown key. Valid keys{' under ' + path if path else ''}: "
                f"{', '.join(allowed)}."
            )
        self.data, self.path = data, path

    @staticmethod
    def _join(path: str, key: str) -> str:
        return f"{path}.{key}" if path else key

    def where(self, key: str) -> str:
        return self._join(self.path, key)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get_str(self, key: str, default: str | None = None) -> str | None:
        if not self.has(key):
            return default
        value = self.data[key]
        if not isinstance(value, str) or not value.strip():
            raise SteerError(
                f"{self.where(key)}: expected a non-empty string, got {_type_name(value)} ({excerpt(value)})."
            )
        return value.strip()

    def get_choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.get_str(key, default)
        if value is not None and value not in options:
            raise SteerError(f"{self.where(key)}: {excerpt(value)} is not one of {', '.join(options)}.")
        return value

    def get_bool(self, key: str) -> bool:
        if not self.has(key):
            return False
        value = self.data[key]
        if not isinstance(value, bool):
            raise SteerError(f"{self.where(key)}: expected true or false, got {_type_name(value)} ({excerpt(value)}).")
        return value

    def get_int(self, key: str, default: int | None = None, low: int = 0, high: int = MAX_SEED) -> int | None:
        if not self.has(key):
            return default
        return _int(self.data[key], self.where(key), low, high)

    def get_float(self, key: str) -> float | None:
        """A coefficient (`coeff`, `vectors[].coeff`): finite, and at most MAX_COEFF in magnitude."""
        if not self.has(key):
            return None
        return coefficient(self.data[key], self.where(key))


def _int(value: Any, where: str, low: int = 0, high: int = MAX_SEED) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SteerError(f"{where}: expected an integer, got {_type_name(value)} ({excerpt(value)}).")
    if not low <= value <= high:
        raise SteerError(f"{where}: {value} is out of range; use an integer from {low} to {high}.")
    return value


def finite_float(value: Any, where: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SteerError(f"{where}: expected a number, got the string {excerpt(value)}.") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SteerError(f"{where}: expected a number, got {_type_name(value)} ({excerpt(value)}).")
    if isinstance(value, int):
        try:
            value = float(value)
        except OverflowError:  # a YAML integer past float range; its digits are not worth echoing
            raise SteerError(
                f"{where}: an integer of {value.bit_length()} bits is too large for a number; use a "
                "real coefficient such as -1 or 2.5."
            ) from None
    if not math.isfinite(value):
        raise SteerError(f"{where}: {excerpt(value)} is not a finite number; use a real coefficient such as -1 or 2.5.")
    return float(value)


MAX_COEFF = 1e6  # |coefficient|; steered activations are float32, and past ~1e38 they overflow to inf


def coefficient(value: Any, where: str) -> float:
    """A finite coefficient of magnitude at most MAX_COEFF, refused while parsing: a huge one would pass as a
    number, then make the run stop mid-way on non-finite activations with an output folder half written."""
    c = finite_float(value, where)
    if abs(c) > MAX_COEFF:
        raise SteerError(
            f"{where}: {c:g} is too large; steer computes activations in float32, where a vector scaled this much "
            f"overflows to values that are not finite. Use a coefficient from -{MAX_COEFF:,.0f} to "
            f"{MAX_COEFF:,.0f}, such as -1 or 2.5."
        )
    return c


def _square(value: Any, where: str) -> Square:
    if not (isinstance(value, list) and len(value) == 2):
        raise SteerError(
            f"{where}: expected a square as [row, col] (world coordinates, row 0 at the bottom), got {excerpt(value)}."
        )
    return (_int(value[0], f"{where}[0]", 0, 1000), _int(value[1], f"{where}[1]", 0, 1000))


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
    lists them), never past `to`. Filters: `decision_square`, `smaller_than_world` (true or false), `maze_dims`."""
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
            _int(k, f"{f.where('per_maze_dim')} key {excerpt(k)}", 1, 99): _int(v, f"{f.where('per_maze_dim')}.{k}", 1)
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
        dims = {_int(d, f"{filters.where('maze_dims')}[{i}]", 1, 99) for i, d in enumerate(raw)}
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
    seeds = tuple(_int(v, f"{where}[{i}]") for i, v in enumerate(value))
    seen: set[int] = set()
    for i, s in enumerate(seeds):
        if s in seen:
            raise SteerError(f"{where}[{i}]: seed {s} is listed twice.")
        seen.add(s)
    return seeds


def parse_edits(value: Any, where: str) -> tuple[Edit, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SteerError(f"{where}: expected a list of edits, got {_type_name(value)} ({excerpt(value)}).")
    edits: list[Edit] = []
    usage = "remove_cheese, top_right_path, {cheese: [r, c]}, {mouse: [r, c]}, {wall: [r, c]}, {open: [r, c]}"
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        if isinstance(item, str) and item in EDIT_OPS and not EDIT_OPS[item]:
            edits.append((item, None))
        elif isinstance(item, dict) and len(item) == 1:
            op, arg = next(iter(item.items()))
            if op not in EDIT_OPS:
                raise SteerError(f"{w}: unknown edit {excerpt(op)}. Valid edits: {usage}.")
            if not EDIT_OPS[op]:
                edits.append((op, None))
            else:
                edits.append((op, _square(arg, f"{w}.{op}")))
        else:
            raise SteerError(f"{w}: {excerpt(item)} is not an edit. Valid edits: {usage}.")
    return tuple(edits)


def parse_vector(value: Any, where: str = "vector") -> VectorSpec:
    if isinstance(value, dict) and "file" in value:
        for key in ("source_seed", "source_seeds"):
            if key in value:
                raise SteerError(
                    f"{where}.{key}: a vector file is already computed; give either {where}.file or an inline "
                    f"vector with {key}, not both."
                )
        f = _Fields(value, where, ("file",))
        name = f.get_str("file")
        if name is None:
            raise SteerError(f"{where}.file: empty; give the path of a vector file made by `steer compute-vector`.")
        return VectorSpec(file=Path(name))
    f = _Fields(value, where, ("kind", "source_seed", "source_seeds", "mouse", "a", "b"))
    kind = f.get_choice("kind", VECTOR_KINDS)
    if kind is None:
        raise SteerError(f"{where}.kind: missing. Use one of {', '.join(VECTOR_KINDS)}, or give {where}.file.")
    a, b = parse_edits(f.data.get("a"), f.where("a")), parse_edits(f.data.get("b"), f.where("b"))
    if kind != "custom" and (f.has("a") or f.has("b")):
        raise SteerError(f"{where}: 'a' and 'b' edit lists are only used with kind: custom (kind is {excerpt(kind)}).")
    if kind == "custom" and not (a or b):
        raise SteerError(f"{where}: kind custom needs edit lists 'a' and/or 'b', e.g. a: [{{cheese: [10, 4]}}].")
    mouse = _square(f.data["mouse"], f.where("mouse")) if f.has("mouse") else None
    if f.has("source_seed") and f.has("source_seeds"):
        raise SteerError(
            f"{where}: give source_seed (one maze's vector) or source_seeds (the mean over several mazes), not both."
        )
    sources = parse_seeds(f.data["source_seeds"], f.where("source_seeds")) if f.has("source_seeds") else None
    return VectorSpec(pair=PairSpec(kind, a, b, mouse), source_seed=f.get_int("source_seed"), source_seeds=sources)


MAX_COEFFS = 1000


def parse_coeffs(value: Any, where: str = "coeffs") -> tuple[float, ...]:
    """A list of coefficients, or an inclusive range {from, to, step}; negatives and zero are allowed."""
    if isinstance(value, dict):
        f = _Fields(value, where, ("from", "to", "step"))
        # Their magnitude is checked below, once the range is known to be short (its size is the better message).
        first, last, step = (finite_float(f.data[k], f.where(k)) if f.has(k) else None for k in ("from", "to", "step"))
        if first is None or last is None or step is None:
            raise SteerError(
                f"{where}: a coefficient range needs 'from', 'to' and 'step', e.g. {{from: -2, to: 2, step: 0.5}}."
            )
        # Compare signs, not the product: (to - from) * step can underflow to -0.0 and slip through.
        if step == 0 or (last != first and (last > first) != (step > 0)):
            raise SteerError(
                f"{where}.step: {step:g} never gets from {first:g} to {last:g}; use a nonzero step with the sign "
                "of 'to' - 'from'."
            )
        steps = (last - first) / step
        if not steps < MAX_COEFFS:  # also catches an overflow to inf
            raise SteerError(f"{where}: the range holds more than the {MAX_COEFFS} coefficients allowed.")
        coefficient(first, f.where("from"))
        coefficient(last, f.where("to"))
        # The small slack keeps 'to' in the range when (to - from) / step is an integer up to float rounding.
        count = math.floor(steps + 1e-9) + 1
        # Rounding drops float noise (0.1 * 3); adding 0.0 turns a -0.0 into 0.0.
        coeffs = tuple(round(first + i * step, 12) + 0.0 for i in range(count))
        if len(set(coeffs)) < len(coeffs):
            raise SteerError(
                f"{where}.step: {step:g} is too small to tell the coefficients apart; use a step of at least 1e-9."
            )
        return coeffs
    if not isinstance(value, list):
        raise SteerError(
            f"{where}: expected a list of numbers or {{from: A, to: B, step: S}}, got {_type_name(value)} "
            f"({excerpt(value)})."
        )
    if not value:
        raise SteerError(f"{where}: the list is empty; give at least one coefficient.")
    if len(value) > MAX_COEFFS:
        raise SteerError(f"{where}: {len(value)} coefficients is more than the {MAX_COEFFS} allowed.")
    coeffs = tuple(coefficient(v, f"{where}[{i}]") for i, v in enumerate(value))
    for i, c in enumerate(coeffs):
        if c in coeffs[:i]:
            raise SteerError(f"{where}[{i}]: coefficient {c:g} is listed twice.")
    return coeffs


def parse_compose_items(value: Any, path: Path | None, where: str = "vectors") -> tuple[ComposeItem, ...]:
    if not isinstance(value, list) or not value:
        raise SteerError(
            f"{where}: expected a non-empty list of {{vector: ..., coeff: ...}} entries, got {_type_name(value)} "
            f"({excerpt(value)})."
        )
    items = []
    for i, item in enumerate(value):
        w = f"{where}[{i}]"
        f = _Fields(item, w, ("vector", "coeff", "layer", "label"))
        if not f.has("vector"):
            raise SteerError(f"{w}.vector: missing; give an inline vector spec ({{kind: cheese}}) or {{file: PATH}}.")
        coeff = f.get_float("coeff")
        if coeff is None:
            raise SteerError(f"{w}.coeff: missing; give this vector's coefficient, e.g. coeff: -1.")
        vector = _beside_spec(parse_vector(item["vector"], f.where("vector")), path, f.where("vector"))
        items.append(ComposeItem(vector, coeff, f.get_str("layer"), f.get_str("label")))
    return tuple(items)


def parse_pairs(value: Any, where: str = "show") -> tuple[tuple[int, int], ...]:
    if not isinstance(value, list):
        raise SteerError(
            f"{where}: expected a list of [source, target] seed pairs, got {_type_name(value)} ({excerpt(value)})."
        )
    pairs = []
    for i, item in enumerate(value):
        if not (isinstance(item, list) and len(item) == 2):
            raise SteerError(f"{where}[{i}]: expected a [source, target] seed pair, got {excerpt(item)}.")
        pairs.append((_int(item[0], f"{where}[{i}][0]"), _int(item[1], f"{where}[{i}][1]")))
    return tuple(pairs)


def _beside_spec(vector: VectorSpec, path: Path | None, where: str = "vector") -> VectorSpec:
    """A relative vector file is looked up from the working folder first, then beside the spec."""
    if vector.file is None or path is None or vector.file.is_absolute():
        return vector
    try:
        here = vector.file.exists()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise SteerError(
            f"{where}.file: {str(vector.file)[:80]!r} cannot be used as a file name ({e.strerror or e})."
        ) from None
    return vector if here else VectorSpec(file=path.parent / vector.file)


CONTROL_NAMES = ("random", "input_edit")


def seed_value(value: Any, where: str) -> int:
    """A non-negative integer seed for a random stream (an episode seed, a shuffle seed)."""
    if type(value) is not int or not 0 <= value < 2**31:
        raise SteerError(f"{where}: expected a non-negative integer seed, got {excerpt(value)}.")
    return value


def choice_of(options: tuple[str, ...]) -> Callable[[Any, str], str]:
    """A parser that accepts one of `options`."""

    def parse(value: Any, where: str) -> str:
        if value not in options:
            raise SteerError(f"{where}: {excerpt(value)} is not one of {', '.join(options)}.")
        return str(value)

    return parse


def parse_names(value: Any, where: str, options: Sequence[str], example: str, unknown: str) -> tuple[str, ...]:
    """A list of names from `options`, duplicates dropped; `unknown` says why another name is refused."""
    if not isinstance(value, list):
        raise SteerError(f"{where}: expected a list such as {example}, got {excerpt(value)}.")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in options:  # a list or mapping is unhashable
            raise SteerError(f"{where}[{i}]: {excerpt(name)} {unknown}")
    return tuple(dict.fromkeys(value))


def parse_metrics(value: Any, where: str = "metrics") -> tuple[str, ...]:
    """Costly metrics a study computes only when asked: the behaviour metrics of steer.analysis.metrics."""
    from steer.analysis.metrics import BEHAVIOUR_METRICS  # here, not at the top: metrics loads torch, specs need not

    return parse_names(
        value,
        where,
        tuple(BEHAVIOUR_METRICS),
        "[p_reach_cheese]",
        "is not a metric to ask for; the field metrics are always computed, and these on request: "
        f"{', '.join(BEHAVIOUR_METRICS)}.",
    )


def parse_controls(value: Any, where: str = "controls") -> tuple[str, ...]:
    """Which controls and references to measure beside the effect: random, input_edit."""
    return parse_names(
        value, where, CONTROL_NAMES, "[random, input_edit]", f"is not a control; use {', '.join(CONTROL_NAMES)}."
    )


def parse_layers(value: Any, where: str = "layers") -> tuple[str, ...]:
    """Hook names, or 'all' (returned as an empty tuple: every hook point but the value head)."""
    if value == "all":
        return ()
    if not isinstance(value, list) or not value:
        raise SteerError(f"{where}: expected 'all' or a non-empty list of hook names, got {excerpt(value)}.")
    names = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise SteerError(f"{where}[{i}]: expected a hook name such as block2.res1.resadd_out, got {excerpt(v)}.")
        names.append(v.strip())
    return tuple(names)
