"""Feature cards: one figure per top feature, its mean map over the mouse's states drawn over the maze's rendering
on the mazes where it fires most, with what it tracks (each property's gain over its control, n and interval).

The overlay is drawn on the observation the network sees (64x64 pixels, the mouse at its start square), so each
of the site's 16x16 positions covers exactly 4x4 pixels of it: no resampling between the map and the maze. The
map is shaded red with an opacity proportional to the feature's code there, on one scale for the whole card
(its largest code over the card's mazes), so the panels of one card compare; the cheese's and the decision
square's positions are boxed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from steer.report.render import CHEESE_EDGE_RGB, DS_RGB, TEXT_RGB, font, tile

PANEL = 256  # pixels per maze panel (4 per observation pixel)
HEAT_RGB = np.array([200, 20, 30], dtype=np.float64)
MAX_ALPHA = 0.75
MOUSE_RGB = (30, 120, 230)


@dataclass(frozen=True)
class CardMaze:
    """One maze of a card: its observation, the feature's mean map there, and the positions to box."""

    seed: int
    frame: np.ndarray  # (64, 64, 3) uint8
    mean_map: np.ndarray  # (H, W)
    cheese: tuple[int, int] | None  # activation positions
    decision: tuple[int, int] | None
    mouse: tuple[int, int] | None = None  # a card of a feature that tracks the mouse: its map at one state


def _box(d: ImageDraw.ImageDraw, position: tuple[int, int] | None, grid: int, rgb: tuple[int, int, int]) -> None:
    if position is not None:
        s = PANEL / grid
        r, c = position
        d.rectangle((c * s, r * s, (c + 1) * s - 1, (r + 1) * s - 1), outline=rgb, width=3)


def overlay(m: CardMaze, scale: float) -> Image.Image:
    """The observation with the map over it (red, opacity up to MAX_ALPHA at `scale`), captioned."""
    grid = m.mean_map.shape[0]
    base = np.asarray(Image.fromarray(m.frame).resize((PANEL, PANEL), Image.NEAREST), dtype=np.float64)
    alpha = np.clip(m.mean_map / scale, 0, 1) * MAX_ALPHA if scale > 0 else np.zeros_like(m.mean_map)
    alpha = np.kron(alpha, np.ones((PANEL // grid, PANEL // grid)))[..., None]
    blended = (1 - alpha) * base + alpha * HEAT_RGB
    img = Image.fromarray(blended.round().astype(np.uint8))
    d = ImageDraw.Draw(img)
    _box(d, m.cheese, grid, CHEESE_EDGE_RGB)
    _box(d, m.decision, grid, DS_RGB)
    _box(d, m.mouse, grid, MOUSE_RGB)
    out = Image.new("RGB", (PANEL, PANEL + 22), (255, 255, 255))
    out.paste(img, (0, 0))
    peak = float(m.mean_map.max())
    ImageDraw.Draw(out).text((2, PANEL + 4), f"seed {m.seed} · peak {peak:.2f}", fill=TEXT_RGB, font=font(13))
    return out


def _fmt_gain(row: Mapping[str, Any]) -> str:
    g = row["gain"]
    if g["mean"] is None:
        return "n 0"
    ci = g.get("mean_ci")
    interval = f" [{ci[0]:+.2f}, {ci[1]:+.2f}]" if ci else ""
    return f"{g['mean']:+.2f}{interval} (n {g['n']})"


def card_figure(
    feature: int, tracks: str, rows: Mapping[str, Mapping[str, Any]], mazes: Sequence[CardMaze]
) -> Image.Image:
    """The card of `feature`: its best property `tracks`, every property's gain (`rows`: property -> unit row
    JSON), and its maps on `mazes`."""
    scale = max((float(m.mean_map.max()) for m in mazes), default=0.0)
    panels = [overlay(m, scale) for m in mazes]
    gains = "; ".join(f"{p} {_fmt_gain(r)}" for p, r in rows.items())
    footer = (
        f"gain = r(map, target) - r(map, the same target drawn from the maze's own squares), mean over mazes, "
        f"95% interval\n{gains}\n"
        + (
            "red: the feature's code at the state where it is largest (the mouse there, boxed blue)"
            if tracks == "mouse"
            else "red: the feature's mean code over the mouse's states"
        )
        + f" (opacity to its largest on this card, {scale:.2f}); boxes: cheese (brown), decision square (orange)"
    )
    title = f"feature {feature}: {tracks.replace('_', '-')}, gain {_fmt_gain(rows[tracks])}"
    return tile(title, panels, columns=len(panels) or 1, footer=footer)
