"""`steer discover`'s `features:` resolved for a run: the dictionary read and checked, each feature's typical code
measured on the screen's mazes, the live features made families (`steer.analysis.discover_features`).

Made in the plan, before the run folder opens, so every refusal leaves nothing behind: a file that is no dictionary,
a dictionary of another checkpoint or channel count (`check_dictionary`), an index out of the dictionary's range, a
position outside the site's map, an `at:` square the mazes lack. The site is the dictionary's own; `layers` does
not move it (a feature is a direction of that site only), and the report names it. The typical codes are measured
here too (a few seconds: the screen's mazes to the site once), so the screen and the confirm stage, each planning
from the spec, scale every feature the same. A module of its own because both stages' plans read it and
`discover_spec` holds only what needs no network.
"""

from __future__ import annotations

from pathlib import Path

from steer.analysis.discover_features import FeatureFamilies, code_summary
from steer.errors import SteerError, excerpt
from steer.net.feature_vectors import feature_direction
from steer.run.feature_plan import FeaturePlan, checked_dictionary
from steer.run.session import Session
from steer.run.spec_values import EVERYWHERE, FeatureSpec
from steer.run.specs import Spec
from steer.studies.discover_spec import FeaturesSpec, screen_seeds

WHERE = "features"


def _place_text(fs: FeaturesSpec) -> str:
    if fs.positions is not None:
        return f"at {len(fs.positions)} map position{'s' if len(fs.positions) != 1 else ''}"
    if fs.at == EVERYWHERE:
        return "everywhere (every position of the map)"
    if isinstance(fs.at, tuple):
        return f"at square {list(fs.at)}"
    return f"at each maze's {str(fs.at).replace('_', '-')} square"


def _indices(fs: FeaturesSpec, size: int, path: Path) -> tuple[int, ...]:
    """The features asked for, each checked against the dictionary's size."""
    if fs.indices is None:
        return tuple(range(size))
    for i, index in enumerate(fs.indices):
        if index >= size:
            raise SteerError(
                f"{WHERE}.indices[{i}]: feature {index} is out of range; the dictionary {excerpt(str(path), 160)} has "
                f"{size} features, indexed 0 to {size - 1}."
            )
    return fs.indices


def plan_features(spec: Spec, session: Session) -> FeatureFamilies | None:
    """The spec's `features` as families, checked against the network and the mazes; None without `features`."""
    fs: FeaturesSpec | None = spec.options.features
    if fs is None:
        return None
    d, site, grid = checked_dictionary(session, fs.file, WHERE)
    asked = _indices(fs, d.sae.d_sae, fs.file)
    for i, (r, c) in enumerate(fs.positions or ()):
        if not (r < grid and c < grid):
            raise SteerError(
                f"{WHERE}.positions[{i}]: [{r}, {c}] is outside the {grid}x{grid} map of {site}; rows and columns run "
                f"from 0 to {grid - 1} (row 0 at the top)."
            )
    # One feature plan holds the place rule (`at`'s square to a map position, steer.net.retarget's one rule).
    fplan = FeaturePlan(WHERE, FeatureSpec(fs.file, asked[0], fs.positions, fs.at), site, feature_direction(d.sae, 0),
                        grid, {})  # fmt: skip
    seeds = screen_seeds(spec)
    for seed in seeds:  # a square a screen maze lacks is refused now, not met in a cell
        fplan.positions(session.renderer.level(seed))
    codes = code_summary(session.policy, session.renderer, d.sae, site, seeds, spec.batch_size)
    live = tuple(i for i in asked if codes.typical[i] is not None)
    if not live:
        raise SteerError(
            f"{WHERE}.indices: none of the {len(asked)} features asked for is ever active on the {len(seeds)} screen "
            f"mazes (all dead there); give features that fire, e.g. indices: all."
        )
    return FeatureFamilies(
        file=str(fs.file),
        site=site,
        grid=grid,
        place_text=_place_text(fs),
        indices=live,
        directions=d.sae.W_dec.detach().float()[list(live)].clone(),
        typical=tuple(float(codes.typical[i]) for i in live),  # type: ignore[arg-type]
        active=tuple(codes.active[i] for i in live),
        place=fplan.positions,
        per_maze=fplan.per_maze,
        dead=tuple(i for i in asked if codes.typical[i] is None),
        rows=codes.rows,
    )


__all__ = ["plan_features"]
