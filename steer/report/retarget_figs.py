"""Retargeting figures: channel maps beside the observation, and retargetability maps of a maze (Pillow only).

A channel map is drawn on the activation grid (row 0 at the top, as the observation), upscaled to the
observation's size, with the cheese's activation position boxed. A retargetability map is the maze schematic
with each open square coloured by P(the agent reaches it), white at 0 to dark green at 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw

from steer.maze.layout import Maze, Square
from steer.report.behaviour_figs import _cell_for, _Grid, _schematic
from steer.report.charts import diverging
from steer.report.render import TEXT_RGB, font, text_width, tile

PANEL = 224  # pixels per panel side
MARK_RGB = (230, 160, 0)
HIGH_RGB = (0, 90, 50)  # P = 1
NOT_TARGET_RGB = (200, 200, 205)


def _boxed(img: Image.Image, position: tuple[int, int] | None, grid: int, rgb: tuple[int, int, int]) -> None:
    if position is None:
        return
    d = ImageDraw.Draw(img)
    s = img.width / grid
    r, c = position
    d.rectangle((c * s, r * s, (c + 1) * s - 1, (r + 1) * s - 1), outline=rgb, width=3)


def _captioned(img: Image.Image, lines: Sequence[str]) -> Image.Image:
    out = Image.new("RGB", (img.width, img.height + 18 * len(lines) + 6), (255, 255, 255))
    out.paste(img, (0, 0))
    d = ImageDraw.Draw(out)
    for i, line in enumerate(lines):
        d.text((2, img.height + 4 + 18 * i), line, fill=TEXT_RGB, font=font(13))
    return out


def channel_maps_figure(
    title: str,
    frame: np.ndarray,
    maps: Sequence[np.ndarray],
    labels: Sequence[str],
    cheese_position: tuple[int, int] | None,
    footer: str = "",
) -> Image.Image:
    """The observation, then one diverging heat map per channel (own colour scale each), cheese position boxed."""
    grid = maps[0].shape[0] if maps else 16
    obs = Image.fromarray(frame).resize((PANEL, PANEL), Image.NEAREST)
    _boxed(obs, cheese_position, grid, MARK_RGB)
    panels = [_captioned(obs, ["observation", "box: the cheese's position"])]
    for m, label in zip(maps, labels, strict=True):
        limit = float(np.abs(m).max()) or 1.0
        rgb = np.array([[diverging(float(v), limit) for v in row] for row in m], dtype=np.uint8)
        img = Image.fromarray(rgb).resize((PANEL, PANEL), Image.NEAREST)
        _boxed(img, cheese_position, grid, (0, 0, 0))
        panels.append(_captioned(img, [label, f"scale ±{limit:.2f}"]))
    return tile(title, panels, columns=min(len(panels), 7), footer=footer)


def _green(p: float) -> tuple[int, int, int]:
    t = min(max(p, 0.0), 1.0)
    return tuple(round(255 + (c - 255) * t) for c in HIGH_RGB)  # type: ignore[return-value]


def _label(p: float) -> str:
    """A probability in a cell: two decimals without the leading zero; "1" only for what rounds to 1.00."""
    text = f"{p:.2f}"
    return "1" if text == "1.00" else text[1:]


def reach_panel(maze: Maze, p: Mapping[Square, float], caption: Sequence[str], span: int = 300) -> Image.Image:
    """The maze with each open square coloured by P(reach it); squares without a value (not targets) grey."""
    cell = _cell_for(maze, span)
    grid = _Grid.of(maze, cell)
    # Open squares that are not targets (the start, or squares a target list leaves out) in grey, so that they
    # cannot be read as P = 0 (white).
    fills = {sq: NOT_TARGET_RGB for sq in maze.open_squares()} | {sq: _green(v) for sq, v in p.items()}
    img = _schematic(maze, grid, fills)
    d = ImageDraw.Draw(img)
    for sq, v in p.items():  # the value, where a cell is big enough to read it
        if cell >= 26:
            x0, y0, _, _ = grid.box(sq)
            d.text(
                (x0 + 3, y0 + 3),
                _label(v),
                fill=(255, 255, 255) if v > 0.6 else TEXT_RGB,
                font=font(max(9, cell // 3)),
            )
    x0, y0, x1, y1 = grid.box(maze.mouse, cell * 0.3)
    d.rectangle((x0, y0, x1, y1), fill=(90, 90, 100))  # the start
    return _captioned(img, caption)


def scale_bar(width: int = 300) -> Image.Image:
    img = Image.new("RGB", (width, 40), (255, 255, 255))
    d = ImageDraw.Draw(img)
    for k in range(width - 20):
        d.line([(10 + k, 4), (10 + k, 16)], fill=_green(k / (width - 21)))
    for frac, label in ((0.0, "0"), (0.5, "0.5"), (1.0, "1")):
        x = 10 + frac * (width - 21)
        d.text((x - text_width(label, 12) / 2, 20), label, fill=TEXT_RGB, font=font(12))
    return img
