"""`steer discover`'s spec, which both of its stages read: its options (`DiscoverOptions`, the keys it reads beside
the shared ones), the rules its verdicts are judged by (`settings_of`), the discovery sample split into the
screen's mazes and the confirm stage's, the checks made before anything is loaded, and what measuring on one
maze needs from it and the session (`measuring`). A module of its own because the screen
(`steer.studies.discover_screen`) and the command (`steer.studies.discover`, which runs the screen as its first
stage) both read it; the name repeats along the layers (docs/layout.md).
"""

from __future__ import annotations

from dataclasses import dataclass
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
from steer.run.spec_fields import finite_float
from steer.run.specs import Spec

DEFAULT_LAYERS = ("block2.res1.resadd_out", "block2.res2.resadd_out", "block3.res1.resadd_out")
DEFAULT_COEFFS = (-2.0, -1.0, 1.0, 2.0, 5.0)
# Families the screen sends on by rank (besides every family whose screen interval clears the margin): 12, so
# that a family as far down as the first full search's 12th (wall:ds_to_cheese, never confirmed) is judged.
DEFAULT_TOP_K = 12

# -- its keys --------------------------------------------------------------------------------


def _family_names(value: Any, where: str) -> tuple[str, ...]:
    """`families`: 'all' (every family but the nulls) or a list of registered family names, each once."""
    if value == "all":
        return SEARCHED
    if not isinstance(value, list) or not value:
        raise SteerError(f"{where}: expected 'all' or a non-empty list of family names such as [path:top_left].")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in FAMILIES:
            raise SteerError(
                f"{where}[{i}]: {excerpt(name)} is not a family of paired maze edits. Families: "
                f"{', '.join(FAMILIES)} (docs/commands.md#discover)."
            )
    return tuple(dict.fromkeys(value))


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


def measuring(session: Session, spec: Spec) -> Measuring:
    """What measuring on one maze needs, from the session and the spec."""
    return Measuring(session.policy, session.renderer, session.device, spec.batch_size, spec.options.control_seed)


__all__ = [
    "DEFAULT_COEFFS",
    "DEFAULT_LAYERS",
    "DEFAULT_TOP_K",
    "DiscoverOptions",
    "check",
    "confirm_seeds",
    "measuring",
    "screen_count",
    "screen_seeds",
    "settings_of",
]
