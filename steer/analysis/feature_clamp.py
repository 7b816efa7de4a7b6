"""A dictionary feature clamped at a target square, for `steer retarget`: the conditions, their patches, and the
feature's natural scale on a maze.

`FeatureCondition` is the feature's counterpart of `steer.analysis.retarget.Condition`: at each target's activation
position (the one `activation_position` the channel patch uses), or at another square's (`at`, the elsewhere
control), the feature's code is set to `value` (`steer.net.feature_vectors.clamped`, every other position and the
rest of the channel vector exact), or, with a random `direction`, the channel vector is moved by the same norm along
that direction instead (`norm_matched`, the feature's random control). `feature_scale` gives the feature's code
over a maze's unpatched observations at the site (its largest and its mean where it fires), so that a `value` can
be read as a multiple of what the feature naturally reaches, as retarget's natural_max does for channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from steer.maze.layout import Maze, Square
from steer.net.feature_vectors import clamped, codes, norm_matched
from steer.net.policy import ImpalaPolicy
from steer.net.retarget import SiteReplacement, activation_position
from steer.net.sae import TopKSAE
from steer.net.vfield import FieldInputs

# The random direction's stream of `np.random.default_rng([control_seed, maze seed, STREAM])`: streams 1 and 2 are
# steer.analysis.retarget's decoy and elsewhere squares, so drawing this one shifts none of theirs.
FEATURE_RANDOM_STREAM = 3


@dataclass(frozen=True)
class FeatureCondition:
    """A dictionary feature's code set to `value` at each target's activation position (or at `at[j]`'s for target
    j); with `direction`, the norm-matched random control along that (channels,) direction instead."""

    sae: TopKSAE
    index: int
    value: float
    direction: torch.Tensor | None = None
    at: tuple[Square, ...] | None = None


def random_direction(channels: int, control_seed: int, seed: int) -> torch.Tensor:
    """A random unit direction in channel space for one maze, from `control_seed` and the maze's seed."""
    rng = np.random.default_rng([control_seed, seed, FEATURE_RANDOM_STREAM])
    u = torch.from_numpy(rng.standard_normal(channels)).float()
    return u / u.norm()


def clamp_patches(
    maze: Maze, targets: Sequence[Square], layer: str, grid: int, cond: FeatureCondition
) -> list[SiteReplacement]:
    """One replacement per target: the feature clamped (or its control) at the target's position or `at[j]`'s."""
    squares = list(targets) if cond.at is None else list(cond.at)
    out = []
    for sq in squares:
        position = activation_position(maze, sq, grid)
        if cond.direction is None:
            fn = clamped(cond.sae, cond.index, [position], cond.value)
        else:
            fn = norm_matched(cond.sae, cond.index, [position], cond.value, cond.direction)
        out.append(SiteReplacement(layer, fn))
    return out


@dataclass(frozen=True)
class FeatureScale:
    """The feature's code over a maze's unpatched observations (every square it covers, both facings, every
    position of the site's map)."""

    max: float
    mean_active: float | None  # the mean where the code is above 0; None where it never fires
    active_share: float  # the share of (observation, position) pairs where it fires

    def to_json(self) -> dict[str, float | None]:
        return {"max": self.max, "mean_active": self.mean_active, "active_share": self.active_share}


def feature_scale(
    policy: ImpalaPolicy, inputs: FieldInputs, layer: str, sae: TopKSAE, index: int, batch_size: int
) -> FeatureScale:
    """The feature's natural scale on `inputs`' maze, from the memoised prefix (no extra forward pass)."""
    site = policy.resolve(layer)
    with torch.inference_mode():
        maps = inputs.prefix(policy, site, batch_size)[site]
        z = torch.cat([codes(sae, index, maps[i : i + batch_size]) for i in range(0, len(maps), batch_size)])
    z = z.double()
    active = z[z > 0]
    return FeatureScale(
        float(z.max()) if z.numel() else 0.0,
        float(active.mean()) if active.numel() else None,
        float(active.numel() / z.numel()) if z.numel() else 0.0,
    )
