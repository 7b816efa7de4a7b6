"""The parsers of single spec values: seeds, edits, vectors, coefficients, seed pairs, layers, controls.

Each takes the raw YAML value and the field path it came from (`where`), and returns the parsed value or
raises a SteerError that names that path, the value found and what would be valid. `_Fields` reads one
mapping (the spec itself, `vector`, a seed range) with the same kind of messages.

They live apart from steer/run/specs.py, which assembles them into a `Spec`: a study declaring keys only it
reads passes these parsers (or its own) as the keys' parsers, and none of them needs the whole spec.
The primitives (`_Fields`, `integer`, numbers, choices) are in steer/run/spec_fields.py, the samples of mazes
(seed lists, ranges and rules) in steer/run/seed_rules.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from steer.errors import SteerError, excerpt
from steer.maze.layout import Square
from steer.net.vectors import EDIT_OPS, VECTOR_KINDS, Edit, PairSpec
from steer.run.seed_rules import parse_seeds
from steer.run.spec_fields import (
    _Fields,
    _type_name,
    coefficient,
    finite_float,
    integer,
    parse_names,
)

FEATURE_SQUARES = ("cheese", "top_right")  # `at:` names of a maze's squares, found on each target maze
EVERYWHERE = "everywhere"


@dataclass(frozen=True)
class FeatureSpec:
    """A dictionary feature as a vector: its decoder direction at chosen positions of the site's map, x `scale`.

    Exactly one of `positions` (activation-map positions, row 0 at the top as in the tensor) and `at` (everywhere,
    a named square of each maze, or one world square [row, col], row 0 at the bottom as steer indexes squares).
    """

    file: Path
    index: int
    positions: tuple[tuple[int, int], ...] | None = None
    at: str | tuple[int, int] | None = None
    scale: float = 1.0


@dataclass(frozen=True)
class VectorSpec:
    pair: PairSpec | None = None  # inline
    source_seed: int | None = None  # None: each target's own vector
    file: Path | None = None  # a saved vector instead
    source_seeds: tuple[int, ...] | None = None  # the mean of the pair's vectors over these mazes
    feature: FeatureSpec | None = None  # a dictionary feature's direction instead

    # Left out of a run's identity while None, so that runs from before features existed keep theirs (resumable).
    OMIT_WHEN_NONE = ("feature",)


@dataclass(frozen=True)
class ComposeItem:
    """One vector of a composition: its own coefficient, and a layer (None: the spec's layer or the file's)."""

    vector: VectorSpec
    coeff: float
    layer: str | None = None
    label: str | None = None


def _square(value: Any, where: str) -> Square:
    if not (isinstance(value, list) and len(value) == 2):
        raise SteerError(
            f"{where}: expected a square as [row, col] (world coordinates, row 0 at the bottom), got {excerpt(value)}."
        )
    return (integer(value[0], f"{where}[0]", 0, 1000), integer(value[1], f"{where}[1]", 0, 1000))


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


FEATURE_USAGE = (
    "{feature: {file: dictionary.safetensors, index: 3, at: cheese}} (at: everywhere, cheese, top_right or a square "
    "[row, col]; or positions: [[r, c], ...] on the site's map; scale: 1)"
)


def feature_place(f: _Fields, usage: str) -> tuple[tuple[tuple[int, int], ...] | None, str | tuple[int, int] | None]:
    """A feature's place in a mapping `f` (a `vector.feature`, discover's `features`): exactly one of `positions`
    (activation-map positions, row 0 at the top) and `at` (everywhere, a named square of each maze, or a world
    square [row, col]); `usage` is the example the messages end with."""
    where = f.path
    if f.has("positions") == f.has("at"):
        raise SteerError(
            f"{where}: give exactly one of positions (positions on the site's map) and at (everywhere, cheese, "
            f"top_right or a world square [row, col]), e.g. {usage}."
        )
    positions = None
    if f.has("positions"):
        raw = f.data["positions"]
        if not isinstance(raw, list) or not raw:
            raise SteerError(
                f"{f.where('positions')}: expected a non-empty list of [row, col] positions on the site's map, got "
                f"{excerpt(raw)}."
            )
        positions = tuple(dict.fromkeys(_position(v, f"{f.where('positions')}[{i}]") for i, v in enumerate(raw)))
    at: str | tuple[int, int] | None = None
    if f.has("at"):
        raw = f.data["at"]
        if isinstance(raw, list):
            at = _square(raw, f.where("at"))
        elif raw == EVERYWHERE or raw in FEATURE_SQUARES:
            at = raw
        else:
            raise SteerError(
                f"{f.where('at')}: {excerpt(raw)} is not a place; use everywhere, {', '.join(FEATURE_SQUARES)} or a "
                "world square [row, col] (row 0 at the bottom)."
            )
    return positions, at


def parse_feature(value: Any, where: str) -> FeatureSpec:
    """`vector: {feature: {file, index, positions | at, scale}}`: every key checked that needs no dictionary."""
    f = _Fields(value, where, ("file", "index", "positions", "at", "scale"))
    name = f.get_str("file")
    if name is None:
        raise SteerError(
            f"{where}.file: missing; give the dictionary file a `steer features` run wrote, e.g. {FEATURE_USAGE}."
        )
    index = f.get_int("index")
    if index is None:
        raise SteerError(f"{where}.index: missing; give the feature's index in the dictionary, e.g. {FEATURE_USAGE}.")
    positions, at = feature_place(f, FEATURE_USAGE)
    scale = _scale(f.data["scale"], f.where("scale")) if f.has("scale") else 1.0
    if scale == 0:
        raise SteerError(f"{f.where('scale')}: 0 makes the vector zero; give the feature's size, e.g. scale: 1.")
    return FeatureSpec(Path(name), index, positions, at, scale)


def _scale(value: Any, where: str) -> float:
    if isinstance(value, float) and not math.isfinite(value):
        raise SteerError(
            f"{where}: {value} is not a finite number; give the feature's size as a real number, e.g. scale: 1 (the "
            "unit decoder direction) or the feature's typical code."
        )
    return coefficient(value, where)


def _position(value: Any, where: str) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2):
        raise SteerError(
            f"{where}: expected a position as [row, col] on the site's map (row 0 at the top), got {excerpt(value)}."
        )
    return (integer(value[0], f"{where}[0]", 0, 1000), integer(value[1], f"{where}[1]", 0, 1000))


def parse_vector(value: Any, where: str = "vector") -> VectorSpec:
    if isinstance(value, dict) and "feature" in value:
        f = _Fields(value, where, ("feature",))
        return VectorSpec(feature=parse_feature(f.data["feature"], f.where("feature")))
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
        pairs.append((integer(item[0], f"{where}[{i}][0]"), integer(item[1], f"{where}[{i}][1]")))
    return tuple(pairs)


def _beside_spec(vector: VectorSpec, path: Path | None, where: str = "vector") -> VectorSpec:
    """A relative vector (or dictionary) file is looked up from the working folder first, then beside the spec."""
    if vector.feature is not None:
        found = _beside(vector.feature.file, path, f"{where}.feature")
        return replace(vector, feature=replace(vector.feature, file=found))
    if vector.file is None:
        return vector
    return VectorSpec(file=_beside(vector.file, path, where))


def _beside(file: Path, path: Path | None, where: str) -> Path:
    if path is None or file.is_absolute():
        return file
    try:
        here = file.exists()
    except OSError as e:  # e.g. a name longer than the file system allows
        raise SteerError(
            f"{where}.file: {str(file)[:80]!r} cannot be used as a file name ({e.strerror or e})."
        ) from None
    return file if here else path.parent / file


CONTROL_NAMES = ("random", "input_edit")


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
