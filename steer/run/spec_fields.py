"""The primitives every spec parser is made of: a mapping read field by field (`_Fields`, with messages that
name the field path, the value and what is valid), the one integer parser (`integer`), finite numbers and
coefficients, and choices among names. steer/run/seed_rules.py and steer/run/spec_values.py build on them."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from steer.errors import SteerError, excerpt, shown_key
from steer.maze.env import MAX_SEED


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
        return integer(self.data[key], self.where(key), low, high)

    def get_float(self, key: str) -> float | None:
        """A coefficient (`coeff`, `vectors[].coeff`): finite, and at most MAX_COEFF in magnitude."""
        if not self.has(key):
            return None
        return coefficient(self.data[key], self.where(key))


def integer(value: Any, where: str, low: int = 0, high: int = MAX_SEED) -> int:
    """The one integer parser of spec values: a YAML integer (not a bool) from `low` to `high`, or one message
    naming the field, the value and the range."""
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


def seed_value(value: Any, where: str) -> int:
    """A seed for a random stream (an episode seed, a shuffle seed): an integer from 0 to 2**31 - 1."""
    return integer(value, where, 0, 2**31 - 1)


def flag(value: Any, where: str) -> bool:
    """true or false, and nothing else (YAML's yes/no/on/off are strings under steer's safe loader)."""
    if not isinstance(value, bool):
        raise SteerError(f"{where}: expected true or false, got {excerpt(value)}.")
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
