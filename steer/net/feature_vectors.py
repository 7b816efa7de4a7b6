"""A dictionary feature as a steering vector: its decoder direction placed at positions of a conv site's map.

A per-position dictionary (`steer.net.sae`) writes each position's channel vector as a sum of decoder rows; a
feature is one row, W_dec[index], a direction in the site's channel space (unit norm: a feature's size lives in its
code). Placed at chosen positions of the site's H x W map (zero elsewhere) and multiplied by a scale, it is an
ordinary additive vector of the site's shape, so everything that adds a vector (apply, compose, sweeps, the
controls) takes it unchanged; `scale` plays the part of the feature's code there.

The norm-matched random control of a feature is a random feature: a random unit direction in channel space at the
same positions, with the same norm, so that it differs from the feature only in the direction that makes it this
feature (a Gaussian over the whole map would spread the same norm over every position and test something else).

A feature can also be clamped (`clamped`: its code set to a value at chosen positions, the rest exact); its
control (`norm_matched`) moves each observation's channel vector there by the same distance the clamp does, along
a random unit direction instead of the feature's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from steer.net.sae import TopKSAE

KIND = "feature"  # a SteeringVector's kind for a feature vector (and "random_feature" for its control)


def feature_direction(sae: TopKSAE, index: int) -> torch.Tensor:
    """The feature's decoder row W_dec[index] (channels,), float32."""
    return sae.W_dec[index].detach().float().clone()


def placed(direction: torch.Tensor, positions: Sequence[tuple[int, int]], grid: int, scale: float) -> torch.Tensor:
    """A (channels, grid, grid) map: `scale * direction` at each of `positions` (row 0 at the top), zero elsewhere."""
    out = torch.zeros(direction.shape[0], grid, grid, dtype=torch.float32)
    for r, c in positions:
        out[:, r, c] = scale * direction
    return out


def random_direction_like(vector: torch.Tensor, positions: Sequence[tuple[int, int]], seed: int) -> torch.Tensor:
    """A random unit direction in channel space (seeded) at `positions`, scaled to `vector`'s norm."""
    gen = torch.Generator().manual_seed(seed)
    direction = torch.randn(vector.shape[0], generator=gen, dtype=torch.float32)
    out = placed(direction / direction.norm(), positions, vector.shape[-1], 1.0)
    return out * (vector.float().norm() / out.norm())


def clamped(
    sae: TopKSAE, index: int, positions: Sequence[tuple[int, int]], value: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A replacement of a site's maps (batch, channels, H, W) that sets the feature's code to `value` at
    `positions`: encode each position's channel vector, set code `index` to `value`, decode, and add back the
    reconstruction error; elsewhere the map is left as it is. With `hooks.replacing` or
    `vfield.replaced_facing_fields` it is the feature's activation clamped.

    Decoding is linear, so decode(z') + (x - decode(z)) = x + (value - z_index) W_dec[index]: computed in that form,
    a position whose code already is `value` comes back bit for bit, and no position is touched by the dictionary's
    reconstruction error (an unclamped run is exact, not merely as good as the dictionary).
    """
    direction = feature_direction(sae, index)

    def edit(at: torch.Tensor) -> torch.Tensor:
        code = sae.encode(at)[..., index]
        return at + (value - code)[..., None] * direction.to(at.dtype)

    return at_positions(positions, edit)


def norm_matched(
    sae: TopKSAE, index: int, positions: Sequence[tuple[int, int]], value: float, direction: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The clamp's norm-matched random control: at `positions`, each observation's channel vector x moved to
    x + |value - code| ||W_dec[index]|| u, u the unit `direction` (channels,), elsewhere the map left as it is.

    The clamp moves x by (value - code) W_dec[index], a change whose norm depends on the observation (how far the
    feature's code is from `value` there); this control makes that same change norm, observation by observation and
    at the same position, in a direction that is not the feature's: what it lacks is only the feature's direction.
    """
    unit = (direction / direction.norm()).float()
    size = float(feature_direction(sae, index).norm())

    def edit(at: torch.Tensor) -> torch.Tensor:
        change = (value - sae.encode(at)[..., index]).abs() * size
        return at + change[..., None] * unit.to(at.dtype)

    return at_positions(positions, edit)


def at_positions(
    positions: Sequence[tuple[int, int]], edit: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A replacement of a site's maps (batch, channels, H, W) that rewrites the channel vectors at `positions` with
    `edit` (given and returning them as (batch, positions, channels)), every other position left as it is."""
    rows, cols = [r for r, _ in positions], [c for _, c in positions]

    def replace(x: torch.Tensor) -> torch.Tensor:
        if not positions:
            return x
        out = x.clone()
        out[:, :, rows, cols] = edit(x[:, :, rows, cols].permute(0, 2, 1)).permute(0, 2, 1)
        return out

    return replace


def codes(sae: TopKSAE, index: int, maps: torch.Tensor) -> torch.Tensor:
    """The feature's code at every position of a batch of maps (batch, channels, H, W): (batch, H, W)."""
    b, c, h, w = maps.shape
    return sae.encode(maps.permute(0, 2, 3, 1).reshape(-1, c))[:, index].reshape(b, h, w)
