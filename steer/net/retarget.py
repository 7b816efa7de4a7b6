"""Retargeting by editing single activations: maze squares on the activation grid, and pixel patches.

procgen renders the whole world of a maze level (15x15 squares in easy mode, 25x25 in hard) into the 64x64
observation, row 0 of the world at the bottom of the image. A convolutional site with an H x W spatial map
(16x16 at `block2`, 8x8 at `block3`) covers the same 64x64 pixels, each position 64 / H pixels tall. A maze
square therefore falls on the activation position under its centre pixel: `activation_position`, the one
function every part of steer uses for that (channel ranking, patches, figures, the explorer).

A pixel patch (`PixelPatch`) sets, at one site, chosen channels to `value` at one position (one value for
every channel, or one value per channel), and optionally every other position of those channels to `default`
(procgen-tools' "smoothed" variant). Unlike a steering
vector it replaces activations instead of adding to them, so what it changes depends on the observation.

procgen-tools' `get_channel_pixel_patch` with `default=None` copies the channel map of batch element 0 into
every element of the batch before setting the pixel; in a vector field (one batch element per mouse square)
every square then sees the first square's map. steer keeps each observation's own map (`first_map=False`,
the intervention as described: one activation changed); `first_map=True` reproduces the procgen-tools
behaviour so the two can be measured side by side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from steer.errors import SteerError
from steer.maze.layout import Maze, Square
from steer.net.policy import ImpalaPolicy, display_name
from steer.net.vfield import BATCH_SIZE, FacingField, FieldInputs, action_probs, check_finite

OBS_SIZE = 64  # procgen observations are 64x64 pixels


def activation_position(maze: Maze, square: Square, grid: int) -> tuple[int, int]:
    """The (row, col) position, row 0 at the top as in the tensor, of a `grid` x `grid` activation map that
    lies under the centre pixel of the world square `square` (row 0 at the bottom, as steer indexes squares).

    The world of `maze.world_dim` squares spans the 64 observation pixels, so a square is 64 / world_dim
    pixels wide (4.27 in easy mode) and an activation position 64 / grid pixels (4 at a 16x16 site). Rows are
    flipped because the image's row 0 is the top of the world.
    """
    world = maze.world_dim
    row, col = square
    if not (0 <= row < world and 0 <= col < world):
        raise SteerError(
            f"Square {list(square)} is outside the {world}x{world} world; rows and columns run from 0 to "
            f"{world - 1} (row 0 is the bottom)."
        )
    per_square = OBS_SIZE / world
    per_position = OBS_SIZE / grid
    y = (world - 1 - row + 0.5) * per_square  # centre pixel, from the top of the image
    x = (col + 0.5) * per_square
    return int(y // per_position), int(x // per_position)


def spatial_grid(policy: ImpalaPolicy, layer: str, where: str = "layer") -> tuple[int, int]:
    """(channels, grid size) of a site with a square spatial map, or an error naming the field."""
    shape = tuple(policy.activation_shape(layer))
    if len(shape) != 3 or shape[1] != shape[2]:
        raise SteerError(
            f"{where}: {display_name(policy.resolve(layer))!r} has activations of shape {shape}, with no spatial "
            "map to place a cheese position on; use a convolutional site such as block2.res1.resadd_out."
        )
    return int(shape[0]), int(shape[1])


@dataclass(frozen=True)
class PixelPatch:
    """Set `channels` to `value` at `position` of the site `layer` (and every other position to `default`).

    `value` is one number for every channel, or a tuple of one number per channel, in the order of `channels`
    (the retarget control that sets each channel to a multiple of its own scale)."""

    layer: str
    channels: tuple[int, ...]
    position: tuple[int, int]
    value: float | tuple[float, ...]
    default: float | None = None
    first_map: bool = False  # procgen-tools' default=None behaviour (see the module docstring)

    def __post_init__(self) -> None:
        if isinstance(self.value, tuple) and len(self.value) != len(self.channels):
            raise SteerError(
                f"a pixel patch of {len(self.channels)} channels was given {len(self.value)} values; give one value "
                "or one per channel."
            )

    @property
    def values(self) -> tuple[float, ...]:
        """The value each channel is set to, in the order of `channels`."""
        return self.value if isinstance(self.value, tuple) else (float(self.value),) * len(self.channels)

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """A patched copy of the site's values `x` (batch, channels, H, W)."""
        out = x.clone()
        ch = list(self.channels)
        if self.default is not None:
            out[:, ch] = self.default
        elif self.first_map and len(out):  # in a hooked forward pass: the pass's own batch element 0
            out[:, ch] = x[:1, ch]
        r, c = self.position
        # (len(ch),) broadcasts over the batch: every observation gets channel k's own value.
        out[:, ch, r, c] = torch.tensor(self.values, dtype=out.dtype, device=out.device)
        return out


def check_patch(policy: ImpalaPolicy, layer: str, channels: Sequence[int], value: float, where: str = "") -> None:
    """Channels in range and a finite value, each with one message naming the field (under `where`, if given)."""
    prefix = f"{where}." if where else ""
    n, _ = spatial_grid(policy, layer)
    for i, c in enumerate(channels):
        if isinstance(c, bool) or not isinstance(c, int | np.integer) or not 0 <= int(c) < n:
            raise SteerError(
                f"{prefix}channels[{i}]: {c!r} is not a channel of {layer!r}, which has {n} channels (0 to {n - 1}) "
                f"in this checkpoint (channel scale {policy.scale})."
            )
    if not math.isfinite(value):
        raise SteerError(f"{prefix}value: {value!r} is not a finite number; use a value such as 5.5.")


@dataclass(frozen=True)
class SiteReplacement:
    """The site's maps replaced by a function of themselves (a dictionary feature clamped at a target's position):
    batched by `pixel_fields` beside pixel patches, one per target, on the same prefix."""

    layer: str
    fn: Callable[[torch.Tensor], torch.Tensor]

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


@contextmanager
def pixel_patching(policy: ImpalaPolicy, patch: PixelPatch) -> Iterator[None]:
    """Hook `patch` into every forward pass of `policy` (real episodes, full passes) while the block runs."""
    remove = policy.add_hook(patch.layer, patch.apply)
    try:
        yield
    finally:
        remove()


def pixel_fields(
    policy: ImpalaPolicy,
    inputs: FieldInputs,
    patches: Sequence[PixelPatch | SiteReplacement],
    batch_size: int = BATCH_SIZE,
) -> list[FacingField]:
    """One `FacingField` per patch or replacement (all at one site), from `facing_inputs` observations.

    The prefix up to the site is computed once (memoised in `inputs`); each chunk of observations is copied
    once per patch, patched, and the copies run through the suffix as one batch, as `vector_fields` batches
    coefficients: a retargetability map is one prefix and one batched suffix per target.
    """
    if not patches:
        return []
    sites = {policy.resolve(p.layer) for p in patches}
    if len(sites) != 1:
        raise SteerError(f"pixel patches at several sites ({', '.join(sorted(sites))}); give one layer.")
    site = sites.pop()
    k = len(patches)
    n = len(inputs.positions)
    probs = np.empty((k, n, 15), dtype=np.float32)
    with torch.inference_mode():
        values = inputs.prefix(policy, site, batch_size)
        first = values[site][:1]  # procgen-tools' batch element 0: the first square, facing 0
        # Chunks of about batch_size observations after the copies; at least one observation per chunk.
        step = max(1, batch_size // k)
        for group in range(0, k, max(1, batch_size)):
            chosen = patches[group : group + max(1, batch_size)]
            for i in range(0, n, step):
                batch = {}
                for name, v in values.items():
                    chunk = v[i : i + step]
                    if name == site:
                        parts = []
                        for p in chosen:
                            base = chunk
                            if isinstance(p, PixelPatch) and p.first_map and p.default is None:
                                base = chunk.clone()
                                base[:, list(p.channels)] = first[:, list(p.channels)]
                            parts.append(p.apply(base))
                        batch[name] = torch.cat(parts)
                    else:
                        batch[name] = torch.cat([chunk] * len(chosen))
                logits = policy.run(batch, start=site, keep=frozenset({"fc_policy"}))["fc_policy"]
                out = action_probs(logits).cpu().numpy().reshape(len(chosen), -1, 15)
                probs[group : group + len(chosen), i : i + step] = out
    check_finite(probs, [patches[0].layer])
    half = n // 2
    return [FacingField(inputs.maze, inputs.positions[:half], p.reshape(2, half, 15)) for p in probs]
