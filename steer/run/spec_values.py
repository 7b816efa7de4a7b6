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
from dataclasses import dataclass
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
        pairs.append((integer(item[0], f"{where}[{i}][0]"), integer(item[1], f"{where}[{i}][1]")))
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
