"""`steer discover`'s screen, a study of its own (`SCREEN`, `discover-screen`) that the command runs as its first
stage, into `OUT/screen/`: every candidate on the first discovery mazes, scored, and what goes on to be
confirmed chosen (`steer.analysis.discover_screen`). Its plan is also the command's `plan`: the checks that need
the network and the mazes (layers with a spatial map, families with members) are made here, before anything is
written. A module of its own because it is a study of its own; the name repeats along the layers
(docs/layout.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.discover import SCREEN_KINDS, Candidate, family_pairs
from steer.analysis.discover_features import FeatureFamilies, screen_features
from steer.analysis.discover_screen import choose, screen_families, screen_maze, screen_table
from steer.errors import SteerError
from steer.maze.families import FAMILIES, NULLS, TARGETS, Pair
from steer.run.session import Session, resolve_layer
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study
from steer.studies.discover_features import plan_features
from steer.studies.discover_spec import (
    DEFAULT_COEFFS,
    DEFAULT_LAYERS,
    DiscoverOptions,
    check,
    measuring,
    screen_count,
    screen_seeds,
    settings_of,
)

# -- the screen ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScreenPlan:
    """The screen's work: every candidate of `families` at every layer and coefficient, and every feature family
    of `features` at its dictionary's site and every coefficient, on each screen maze."""

    spec: Spec
    layers: tuple[str, ...]
    families: tuple[str, ...]  # searched families of maze edits and the nulls
    coeffs: tuple[float, ...]
    features: FeatureFamilies | None = None

    @property
    def layer(self) -> str:
        site = () if self.features is None else (self.features.site,)
        return ", ".join(dict.fromkeys((*self.layers, *site)))

    def families_for(self, target: str) -> tuple[str, ...]:
        """The families screened on `target`: all of them with the cheese kept; with it removed, the place
        families and beside them the nulls (whose floor a removed candidate is judged against), or none when no
        place family is searched."""
        have = tuple(f for f in self.families if target in FAMILIES[f].targets)
        return have if target == "keep" or any(FAMILIES[f].place for f in have) else ()

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        """Every candidate screened: by family, then target, layer and coefficient; then the feature families (at
        their site, the cheese kept) by feature and coefficient."""
        edits = tuple(
            Candidate(f, layer, c, target)
            for f in self.families
            for target in TARGETS
            if f in self.families_for(target)
            for layer in self.layers
            for c in self.coeffs
        )
        if self.features is None:
            return edits
        return edits + tuple(Candidate(f, self.features.site, c) for f in self.features.families for c in self.coeffs)

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        m = measuring(session, self.spec)
        result: dict[str, Any] = {"seed": seed, "maze_dim": session.renderer.level(seed).maze_dim}
        result |= {kind: {} for kind in (*SCREEN_KINDS, "empty")}
        for target in TARGETS:
            families = self.families_for(target)
            if families:
                for kind, values in screen_maze(m, seed, target, families, self.layers, self.coeffs).items():
                    result[kind].update(values)
        if self.features is not None:
            for kind, values in screen_features(m, seed, self.features, self.coeffs).items():
                result[kind].update(values)
        return "done", [], result


def _check_layers(
    spec: Spec, session: Session, families: tuple[str, ...], default: tuple[str, ...] = DEFAULT_LAYERS
) -> tuple[str, ...]:
    """The layers searched, resolved (`default` when the spec gives none); each needs a spatial map where a family
    changes the maze at a place."""
    policy = session.policy
    layers = tuple(resolve_layer(policy, name, f"layers[{i}]") for i, name in enumerate(spec.options.layers or default))
    spatial = [f for f in families if FAMILIES[f].spatial]
    for i, layer in enumerate(layers):
        shape = tuple(policy.activation_shape(layer))
        if len(shape) != 3 and spatial:
            raise SteerError(
                f"layers[{i}]: {layer!r} has activations of shape {list(shape)}, with no spatial map; the families "
                f"{', '.join(spatial[:4])}{', …' if len(spatial) > 4 else ''} change the maze at a place, and discover "
                "locates each vector's effect on the maze, which needs a convolutional site such as "
                "block2.res1.resadd_out. Use such a layer, or search only the null families there."
            )
    return layers


def _check_families(spec: Spec, session: Session, families: tuple[str, ...]) -> None:
    """A family empty on a maze skips that maze; one empty on every screen maze (or every confirm maze of a
    sample) cannot be judged, and is bad input: said before anything is written."""
    groups = {
        "screen": screen_seeds(spec),
        "discovery": spec.seeds[screen_count(spec) :],
        "replication": spec.options.replication,
    }
    for group, seeds in groups.items():
        members = dict.fromkeys(families, 0)
        first: dict[str, tuple[int, str]] = {}
        for seed in seeds:
            # With the cheese kept: a place family has a member with it removed exactly where it has one with it
            # kept (a path's squares do not depend on the cheese; a cheese move is built on the level as generated).
            for name, p in family_pairs(session.renderer, seed, "keep", families).items():
                if isinstance(p, Pair):
                    members[name] += 1
                else:
                    first.setdefault(name, (seed, p.reason))
        for name in families:
            if members[name] == 0 and FAMILIES[name].factor != "null":
                seed, why = first[name]
                where = (
                    f"families[{spec.raw['families'].index(name)}]"
                    if isinstance(spec.raw.get("families"), list)
                    else "families"
                )
                raise SteerError(
                    f"{where}: {name} has no member on any of the {len(seeds)} {group} mazes (seed {seed}: {why}). "
                    "Choose seeds where it has one (e.g. seeds: {from: 0, count: 48, where: {decision_square: true, "
                    "smaller_than_world: true}}), or leave the family out."
                )


def _searched(spec: Spec) -> tuple[str, ...]:
    """The families the spec searches, the nulls left out (they are measured beside every search)."""
    return tuple(f for f in spec.options.families if f not in NULLS)


def plan(spec: Spec, session: Session) -> ScreenPlan:
    """The screen's plan (both studies' `plan`: the command's confirm plan comes from the screen's report), after
    the checks that need the network and the mazes."""
    searched = _searched(spec)
    families = (*searched, *NULLS)
    features = plan_features(spec, session)
    # A search of features only measures the nulls at the dictionary's site unless `layers` says otherwise.
    default = (features.site,) if features is not None and not searched else DEFAULT_LAYERS
    layers = _check_layers(spec, session, families, default)
    _check_families(spec, session, families)
    return ScreenPlan(spec, layers, families, spec.options.coeffs or DEFAULT_COEFFS, features)


# -- the screen's report ---------------------------------------------------------------------------------


def screen_report(
    plan: ScreenPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    """The screen's report: every candidate's row, ranked, with why it was or was not chosen; per family, its rank
    and whether it goes on; the mazes each family had no member on."""
    # Read once: each candidate goes over every maze, and the runner's results are decoded as they are read.
    done = list(done)
    rows = screen_table(plan.candidates, done)
    top_k = spec.options.top_k
    settings = settings_of(spec)
    margin = settings.margin
    crumble = settings if spec.options.skip_crumbling else None
    chosen = choose(rows, top_k, NULLS, margin, crumble)
    empty: dict[str, list[dict[str, Any]]] = {}
    for m in done:
        for name, why in m["empty"].items():
            empty.setdefault(name, []).append({"seed": m["seed"], "reason": why})
    ranked = sorted(rows, key=lambda r: (-r["score"], r["candidate"]))
    place = [f for f in plan.families if FAMILIES[f].place]
    return Report(
        {
            "screen": {
                "seeds": [m["seed"] for m in done],
                "candidates_tried": len(rows),
                "targets": {
                    "keep": "every family, on the levels as generated",
                    "remove": f"the place families ({', '.join(place) or 'none searched'}) and the nulls, on the "
                    "levels without their cheese (steer.maze.families.Family.build_for)",
                },
                "rule": f"the top {top_k} families by their best candidate's score (the largest mean |change − the "
                "random control's change| of a probability or share of time over the screen's mazes, less the "
                "unrelated-maze floor's), one candidate per family (with the cheese kept or removed), ties by name; "
                "and beyond them every family whose best candidate's 95% BCa interval of change − control, in its "
                f"claimed direction, lies wholly above the margin {margin:g} (at least 5 mazes); the nulls are never "
                "chosen"
                + (
                    "; a candidate whose mean rise of P(move into a wall) or entropy over the screen's mazes reaches "
                    f"the crumble thresholds ({settings.crumble_wall:g}, {settings.crumble_entropy:g} nats) is never "
                    "its family's best (skip_crumbling)"
                    if crumble is not None
                    else ""
                ),
                "chosen": [r["candidate"] for r in chosen],
                "families": screen_families(rows, chosen, NULLS),
                "candidates": ranked,
                "empty": empty,
                **({} if plan.features is None else {"features": plan.features.to_json()}),
            },
            "mazes": [{"seed": m["seed"], "maze_dim": m["maze_dim"], "empty": m["empty"]} for m in done],
        }
    )


SCREEN = Study(
    name="discover-screen",
    help="steer discover's screen: every candidate on a small sample, scored; the top k families and any whose "
    "interval clears the margin chosen.",
    options=DiscoverOptions,
    check=check,
    plan=plan,
    report=screen_report,
    cells=screen_seeds,
    grows=False,
)


__all__ = ["SCREEN", "ScreenPlan", "plan"]
