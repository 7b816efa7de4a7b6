"""`steer discover`'s spec, which both of its stages read: its options (`DiscoverOptions`, the keys it reads beside
the shared ones), the rules its verdicts are judged by (`settings_of`), the discovery sample split into the
screen's mazes and the confirm stage's, the checks made before anything is loaded, and what measuring on one
maze needs from it and the session (`measuring`). A module of its own because the screen
(`steer.studies.discover_screen`) and the command (`steer.studies.discover`, which runs the screen as its first
stage) both read it; the name repeats along the layers (docs/layout.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.discover import Measuring, Settings
from steer.errors import SteerError, excerpt
from steer.maze.families import FAMILIES, SEARCHED
from steer.run.options import (
    Options,
    coeffs_option,
    control_seed_option,
    layers_option,
    option,
    seed_list,
    whole,
)
from steer.run.session import Session
from steer.run.spec_fields import _Fields, finite_float, flag, integer
from steer.run.spec_values import EVERYWHERE, _beside, feature_place
from steer.run.specs import Spec

DEFAULT_LAYERS = ("block2.res1.resadd_out", "block2.res2.resadd_out", "block3.res1.resadd_out")
DEFAULT_COEFFS = (-2.0, -1.0, 1.0, 2.0, 5.0)
# Families the screen sends on by rank (besides every family whose screen interval clears the margin): 12, so
# that a family as far down as the first full search's 12th (wall:ds_to_cheese, never confirmed) is judged.
DEFAULT_TOP_K = 12

# -- its keys --------------------------------------------------------------------------------


def _family_names(value: Any, where: str) -> tuple[str, ...]:
    """`families`: 'all' (every family but the nulls), a list of registered family names, each once, or [] (none:
    a search of dictionary features only, `features`)."""
    if value == "all":
        return SEARCHED
    if not isinstance(value, list):
        raise SteerError(
            f"{where}: expected 'all', a list of family names such as [path:top_left], or [] with `features` (a "
            "search of dictionary features only)."
        )
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in FAMILIES:
            raise SteerError(
                f"{where}[{i}]: {excerpt(name)} is not a family of paired maze edits. Families: "
                f"{', '.join(FAMILIES)} (docs/commands.md#discover)."
            )
    return tuple(dict.fromkeys(value))


FEATURES_USAGE = (
    "features: {file: dictionary.safetensors, indices: all, at: everywhere} (indices: all, a list [56, 220] or "
    "{from: 0, to: 63}; at: everywhere, cheese, top_right or a world square [row, col]; or positions: [[r, c], ...] "
    "on the site's map)"
)


@dataclass(frozen=True)
class FeaturesSpec:
    """`features`: the dictionary whose features discover searches as families (`feature:<index>`), which of its
    features (None: all of them), and where each is placed on every maze (as a `vector: {feature: ...}` is:
    exactly one of `positions` and `at`, steer.run.spec_values.feature_place)."""

    file: Path
    indices: tuple[int, ...] | None = None
    positions: tuple[tuple[int, int], ...] | None = None
    at: str | tuple[int, int] | None = None

    FILES = ("file",)  # its file's sha256 is part of the run's identity (steer.run.runner.option_files)


def _indices(value: Any, where: str) -> tuple[int, ...] | None:
    """`indices`: all (None), a non-empty list of indices, each once, or an inclusive range {from, to}."""
    if value == "all":
        return None
    if isinstance(value, dict):
        f = _Fields(value, where, ("from", "to"))
        first, last = f.get_int("from"), f.get_int("to")
        if first is None or last is None or first < 0 or last < first:
            raise SteerError(
                f"{where}: a range of feature indices needs from <= to, both 0 or more, e.g. {{from: 0, to: 63}}."
            )
        return tuple(range(first, last + 1))
    if not isinstance(value, list) or not value:
        raise SteerError(
            f"{where}: expected all, a non-empty list of feature indices or {{from, to}}; e.g. {FEATURES_USAGE}."
        )
    out = tuple(integer(v, f"{where}[{i}]", 0, 1_000_000) for i, v in enumerate(value))
    for i, x in enumerate(out):
        if x in out[:i]:
            raise SteerError(f"{where}[{i}]: feature {x} is listed twice.")
    return out


def _features(value: Any, where: str, spec_path: Path | None) -> FeaturesSpec:
    """`features`: {file, indices, at | positions}; every key checked that needs no dictionary (the dictionary's
    own checks are made with the network, `steer.studies.discover_features.plan_features`)."""
    f = _Fields(value, where, ("file", "indices", "positions", "at"))
    name = f.get_str("file")
    if name is None:
        raise SteerError(
            f"{f.where('file')}: missing; give the dictionary file a `steer features` run wrote, e.g. {FEATURES_USAGE}."
        )
    indices = _indices(f.data["indices"], f.where("indices")) if f.has("indices") else None
    if not (f.has("positions") or f.has("at")):
        return FeaturesSpec(_beside(Path(name), spec_path, where), indices, None, EVERYWHERE)
    positions, at = feature_place(f, FEATURES_USAGE)
    return FeaturesSpec(_beside(Path(name), spec_path, where), indices, positions, at)


def _positive(value: Any, where: str) -> float:
    """A finite number above 0."""
    x = finite_float(value, where)
    if x <= 0:
        raise SteerError(f"{where}: {excerpt(value)} must be above 0.")
    return x


def _crumble(value: Any, where: str) -> dict[str, float]:
    """`crumble`: {wall_mass, entropy}, either or both, each above 0."""
    if not isinstance(value, dict) or set(value) - {"wall_mass", "entropy"}:
        raise SteerError(f"{where}: expected {{wall_mass: 0.1, entropy: 0.5}} (mean rises that count as crumbling).")
    return {k: _positive(v, f"{where}.{k}") for k, v in value.items()}


@dataclass(frozen=True, kw_only=True)
class DiscoverOptions(Options):
    replication: tuple[int, ...] = option(
        seed_list,
        missing="replication: missing; give the replication sample, disjoint from seeds, e.g. "
        "replication: {from: 1000, count: 32}.",
    )
    screen: int | None = option(whole(2, 1000), default=None, about="the screen's mazes (default: a third, 2-16)")
    families: tuple[str, ...] = option(_family_names, default=SEARCHED, about="'all' or a list of family names")
    layers: tuple[str, ...] = layers_option(about="sites searched (default: three residual sites)")
    coeffs: tuple[float, ...] = coeffs_option(default=(), about="coefficients searched (default: -2, -1, 1, 2, 5)")
    top_k: int = option(whole(1, 50), default=DEFAULT_TOP_K)
    margin: float = option(_positive, default=Settings.margin)
    precision: float = option(_positive, default=Settings.precision)
    crumble: dict[str, float] = option(_crumble, default={}, about="{wall_mass, entropy}: rises that crumble")
    control_seed: int = control_seed_option()
    features: FeaturesSpec | None = option(
        _features, default=None, beside=True, about="a dictionary's features searched as families feature:<index>"
    )
    skip_crumbling: bool | None = option(
        flag, default=None, about="the screen passes over candidates that crumble the policy on its mazes"
    )

    # Left out of a run's identity while None, so that searches from before these keys existed keep theirs.
    OMIT_WHEN_NONE = ("features", "skip_crumbling")


def settings_of(spec: Spec) -> Settings:
    """The rules the verdicts are judged by, as the spec states them (`Settings`' defaults where it does not)."""
    crumble = spec.options.crumble
    base = Settings()
    return Settings(
        margin=spec.options.margin,
        precision=spec.options.precision,
        crumble_wall=crumble.get("wall_mass", base.crumble_wall),
        crumble_entropy=crumble.get("entropy", base.crumble_entropy),
    )


def screen_count(spec: Spec) -> int:
    """How many of the discovery mazes screen: `screen`, or a third of them, from 2 to 16."""
    screen = spec.options.screen
    return screen if screen is not None else min(16, max(2, len(spec.seeds) // 3))


def screen_seeds(spec: Spec) -> tuple[int, ...]:
    """The screen's cells: the first `screen_count` discovery mazes."""
    return spec.seeds[: screen_count(spec)]


def confirm_seeds(spec: Spec) -> tuple[int, ...]:
    """The confirm stage's cells: the discovery mazes the screen did not use, then the replication sample."""
    return (*spec.seeds[screen_count(spec) :], *spec.options.replication)


def check(spec: Spec) -> None:
    """The samples' checks, before anything is loaded: a replication disjoint from the discovery sample, at least
    5 mazes left to confirm on each, and no coefficient 0."""
    replication = spec.options.replication
    shared = sorted(set(replication) & set(spec.seeds))
    if shared:
        raise SteerError(
            f"replication: seed {shared[0]} is also in seeds (the discovery sample); a replication needs mazes the "
            "discovery never saw. Draw it from another range, e.g. {from: 1000, count: 32}."
        )
    n = screen_count(spec)
    if len(spec.seeds) - n < 5:
        raise SteerError(
            f"screen: {n} of the {len(spec.seeds)} discovery seeds screen the candidates, leaving "
            f"{len(spec.seeds) - n} to confirm them; the confirm stage needs at least 5. Give more seeds or a "
            "smaller screen."
        )
    if len(replication) < 5:
        raise SteerError(f"replication: {len(replication)} mazes; a replication needs at least 5.")
    if any(c == 0 for c in spec.options.coeffs):
        raise SteerError("coeffs: 0 is not a coefficient to search (it adds nothing); drop it.")
    if not spec.options.families and spec.options.features is None:
        raise SteerError(
            "families: [] searches no family of maze edits, and no `features` are given: nothing to search. List "
            f"families, or give a dictionary's features, e.g. {FEATURES_USAGE}."
        )


def measuring(session: Session, spec: Spec) -> Measuring:
    """What measuring on one maze needs, from the session and the spec."""
    return Measuring(session.policy, session.renderer, session.device, spec.batch_size, spec.options.control_seed)


__all__ = [
    "DEFAULT_COEFFS",
    "DEFAULT_LAYERS",
    "DEFAULT_TOP_K",
    "FEATURES_USAGE",
    "DiscoverOptions",
    "FeaturesSpec",
    "check",
    "confirm_seeds",
    "measuring",
    "screen_count",
    "screen_seeds",
    "settings_of",
]
