"""Drawing a batch again on other mazes: a replication sample, a `--seeds` sample, a grown sample.

Every experiment's mazes are drawn again by the rule they were drawn by (a range keeps its length, a seed rule
its count and filters), moved to the new sample's start, `factor` times as many when a claim's sample grows
(docs/statistics.md#samples-of-mazes).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from steer.errors import SteerError, excerpt
from steer.run.seed_rules import is_seed_rule
from steer.run.spec_fields import integer
from steer.run.specs import Spec
from steer.run.vector_plan import vector_specs

MAX_GROWTH = 10  # samples.grow: the largest factor a claim's sample may grow by
# Spec keys that name a sample of mazes (redrawn), and keys that pick a few of them to draw (dropped: each
# study's default, the first of the new seeds, takes their place).
SAMPLE_KEYS = ("seeds", "sources", "targets")
PICK_KEYS = ("show", "grid_seeds")


@dataclass(frozen=True)
class Shift:
    """Every experiment's mazes drawn again `offset` seeds on, by the rule they were drawn by, inside [low, high],
    `factor` times as many (a claim's sample grown to reach its precision)."""

    offset: int
    low: int
    high: int
    factor: int = 1


def redrawn(value: Any, shift: Shift, where: str, grow: bool = True) -> Any:
    factor = shift.factor if grow else 1
    if isinstance(value, dict) and "from" in value:
        first = integer(value["from"], where) + shift.offset
        out = {**value, "from": first}
        if not is_seed_rule(value) and "to" in value:  # a plain range keeps its length (times the factor)
            length = integer(value["to"], where) - integer(value["from"], where) + 1
            out["to"] = first + length * factor - 1
            if out["to"] > shift.high:
                raise SteerError(
                    f"{where}: the range {value['from']}-{value['to']} moved by {shift.offset}"
                    + (f" and made {factor} times longer" if factor > 1 else "")
                    + f" runs past {shift.high}, the end of the sample; give a larger sample."
                )
            return out
        bound = integer(value["to"], where) + shift.offset if "to" in value and factor == 1 else shift.high
        out["to"] = min(bound, shift.high)
        if "count" in value:
            out["count"] = integer(value["count"], f"{where}.count") * factor
        if isinstance(value.get("per_maze_dim"), dict):
            out["per_maze_dim"] = {
                k: integer(v, f"{where}.per_maze_dim") * factor for k, v in value["per_maze_dim"].items()
            }
        return out
    if isinstance(value, list) and len(value) == 1:
        return value  # one maze drawn for a figure (an illustration): it keeps its seed
    if isinstance(value, list):
        raise SteerError(
            f"{where}: a list of {len(value)} seeds names these mazes and no others, so it cannot be drawn again "
            "on a new sample; write it as a range {from: A, to: B} or a rule {from: A, count: N, where: {...}} "
            "(docs/statistics.md#samples-of-mazes)."
        )
    return value


def redraw(data: dict[str, Any], shift: Shift, where: str) -> dict[str, Any]:
    """A spec's raw mapping with every sample of mazes drawn again under `shift` (mean vectors' sources too)."""
    out = copy.deepcopy(data)
    for key in SAMPLE_KEYS:
        if key in out:
            out[key] = redrawn(out[key], shift, f"{where}.{key}")
    for key in PICK_KEYS:
        out.pop(key, None)
    vectors = [("vector", out.get("vector"))] + [(f"vectors[{i}]", v) for i, v in enumerate(out.get("vectors") or [])]
    for name, vec in vectors:
        if isinstance(vec, dict):
            inner = vec.get("vector") if isinstance(vec.get("vector"), dict) else vec  # compose items nest one
            if "source_seeds" in inner:
                # a mean vector's sources move with the sample but do not grow: they are the vector, not the sample
                where_ = f"{where}.{name}.source_seeds"
                inner["source_seeds"] = redrawn(inner["source_seeds"], shift, where_, grow=False)
            if isinstance(inner.get("source_seed"), int) and not isinstance(inner["source_seed"], bool):
                inner["source_seed"] += shift.offset
    return out


def sample_range(value: Any, where: str) -> tuple[int, int]:
    if not isinstance(value, dict) or set(value) != {"from", "to"}:
        raise SteerError(f"{where}: expected a range of seeds {{from: A, to: B}}, got {excerpt(value)}.")
    low, high = integer(value["from"], f"{where}.from"), integer(value["to"], f"{where}.to")
    if high < low:
        raise SteerError(f"{where}: 'to' ({high}) is below 'from' ({low}).")
    return low, high


def parse_seed_range(text: str, where: str = "--seeds") -> tuple[int, int]:
    """`FROM-TO` (inclusive), as `steer batch --seeds 300-999` takes it."""
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", text)
    if m is None or int(m[2]) < int(m[1]):
        raise SteerError(f"{where}: {excerpt(text)} is not a range of seeds FROM-TO with FROM <= TO, e.g. 300-999.")
    return int(m[1]), int(m[2])


def spec_seeds(spec: Spec) -> set[int]:
    found = set(spec.seeds) | spec.options.sample_seeds()
    for vec in vector_specs(spec.options):  # a mean vector's sources are mazes of the sample too
        if vec.source_seeds:
            found |= set(vec.source_seeds)
    return found


def inside(exps: Iterable[tuple[str, Spec]], low: int, high: int, what: str) -> None:
    """Every sample of mazes lies in [low, high]; one-maze illustrations may keep their seed."""
    for name, spec in exps:
        seeds = spec_seeds(spec)
        outside = sorted(s for s in seeds if not low <= s <= high)
        if outside and len(seeds) > 1:
            raise SteerError(
                f"experiment {name!r}: seed {outside[0]} lies outside the {what} sample {low}-{high}; "
                "draw its mazes inside it, or widen the sample."
            )


def grow_steps(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    ok = isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or any(v < 2 or v > MAX_GROWTH for v in value) or list(value) != sorted(set(value)):
        raise SteerError(
            f"samples.grow: {excerpt(value)} is not a list of increasing whole factors from 2 to {MAX_GROWTH}, e.g. "
            "[2, 4]: how many times its mazes an underpowered claim's experiments draw, step by step."
        )
    return tuple(value)
