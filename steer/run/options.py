"""A study's options: one frozen dataclass per study, each field a spec key declared once with its parser, its
default and, for a key the study cannot run without, the message its absence gets. Parsed once, into
`Spec.options`; `Spec` itself keeps only what every study shares (steer/run/specs.py).

    @dataclass(frozen=True, kw_only=True)
    class ApplyOptions(Options):
        vector: VectorSpec = option(vector_beside_spec, missing="vector: missing; give ... {kind: cheese} ...")
        coeff: float = option(coefficient, missing="coeff: missing; give the coefficient ..., e.g. coeff: -1.")
        controls: tuple[str, ...] = option(parse_controls, default=())

A parser takes `(value, where)`, or `(value, where, spec_path)` when declared `beside=True` (a file named in
the spec is found beside it). The keys several studies share (a vector, its coefficient, controls, ...) are
declared once at the end of this module (`vector_option()`, `coeff_option()`, ...), so each key's rules live in
one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, Self

from steer.errors import SteerError
from steer.run.seed_rules import parse_seeds
from steer.run.spec_fields import coefficient, integer
from steer.run.spec_values import (
    ComposeItem,
    VectorSpec,
    _beside_spec,
    parse_coeffs,
    parse_compose_items,
    parse_controls,
    parse_layers,
    parse_metrics,
    parse_pairs,
    parse_vector,
)

KeyParser = Callable[..., Any]


def option(
    parse: KeyParser,
    *,
    default: Any = MISSING,
    missing: str | None = None,
    beside: bool = False,
    sample: bool = False,
    about: str = "",
) -> Any:
    """A field of a study's options. Without a `default` the key is required, and `missing` is the message (one
    paragraph naming the key and the fix) a spec without it gets. `sample`: the field holds a sample of mazes (a
    transfer's sources and targets), which a batch draws again like `seeds`. `about`: one line for the docs."""
    meta = {"parse": parse, "missing": missing, "beside": beside, "sample": sample, "about": about}
    if default is MISSING:
        return field(metadata=meta)
    if isinstance(default, list | dict | set):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, kw_only=True)
class Options:
    """The base of every study's options dataclass (kw_only, so required and defaulted keys mix in any order)."""

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        _SUBCLASSES.append(cls)

    @classmethod
    def key_names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def sample_seeds(self) -> set[int]:
        """The seeds of every field that holds a sample of mazes (`option(sample=True)`)."""
        return {seed for f in fields(self) if f.metadata.get("sample") for seed in getattr(self, f.name)}

    @classmethod
    def required(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING)

    @classmethod
    def parse(cls, data: Mapping[str, Any], path: Path | None, command: str) -> Self:
        """The options from a spec's mapping: every key parsed by its own parser, a missing required key refused
        with its message."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data.get(f.name)
            if raw is None:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise SteerError(
                        f.metadata["missing"]
                        or f"{f.name}: missing; `steer {command}` needs it. See configs/ for examples."
                    )
                continue
            parse = f.metadata["parse"]
            values[f.name] = parse(raw, f.name, path) if f.metadata["beside"] else parse(raw, f.name)
        return cls(**values)


_SUBCLASSES: list[type[Options]] = []


def known_keys() -> set[str]:
    """Every key some study's options read (the studies imported so far): a key another study reads is refused
    as "not used by this command", any other as unknown."""
    return {k for cls in _SUBCLASSES for k in cls.key_names()}


@dataclass(frozen=True, kw_only=True)
class NoOptions(Options):
    """A study with no keys of its own."""


# -- the keys several studies share, each declared once ---------------------------------------------------


def vector_beside(value: Any, where: str, path: Path | None) -> VectorSpec:
    """An inline vector spec or a vector file, a relative file looked up beside the spec too."""
    return _beside_spec(parse_vector(value, where), path, where)


def compose_items(value: Any, where: str, path: Path | None) -> tuple[ComposeItem, ...]:
    return parse_compose_items(value, path, where)


def seed_list(value: Any, where: str) -> tuple[int, ...]:
    return parse_seeds(value, where)


def whole(low: int = 0, high: int = 2**31 - 1) -> KeyParser:
    """A parser of an integer from `low` to `high` (steer.run.spec_fields.integer, the one integer parser)."""

    def parse(value: Any, where: str) -> int:
        return integer(value, where, low, high)

    return parse


VECTOR_MISSING = "vector: missing; give an inline vector spec ({kind: cheese}) or {file: PATH}."
COEFF_MISSING = "coeff: missing; give the coefficient to multiply the vector by, e.g. coeff: -1."


def vector_option(**kw: Any) -> Any:
    return option(vector_beside, beside=True, **({"missing": VECTOR_MISSING} | kw))


def coeff_option(**kw: Any) -> Any:
    return option(coefficient, **({"missing": COEFF_MISSING} | kw))


def coeffs_option(**kw: Any) -> Any:
    return option(parse_coeffs, **kw)


def controls_option() -> Any:
    return option(parse_controls, default=(), about="random and/or input_edit, measured beside the effect")


def control_seed_option() -> Any:
    return option(whole(), default=0, about="seeds the random controls (with each maze's seed)")


def metrics_option() -> Any:
    return option(parse_metrics, default=(), about="behaviour metrics to compute too (costly)")


def layers_option(**kw: Any) -> Any:
    return option(parse_layers, **({"default": ()} | kw))


def pairs_option(**kw: Any) -> Any:
    return option(parse_pairs, **({"default": ()} | kw))


def seeds_option(**kw: Any) -> Any:
    return option(seed_list, **({"default": ()} | kw))


__all__ = [
    "COEFF_MISSING",
    "VECTOR_MISSING",
    "KeyParser",
    "NoOptions",
    "Options",
    "coeff_option",
    "coeffs_option",
    "compose_items",
    "control_seed_option",
    "controls_option",
    "known_keys",
    "layers_option",
    "metrics_option",
    "option",
    "pairs_option",
    "seed_list",
    "seeds_option",
    "vector_beside",
    "vector_option",
    "whole",
]
