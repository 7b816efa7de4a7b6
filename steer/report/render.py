"""PNG figures: vector fields drawn over a clean schematic of the maze.

The schematic is cropped to the open part of the world (plus one wall ring), so a 3x3 maze in a 15x15
world is as legible as a full one. Arrows point where the policy's probability mass moves the mouse;
an arrow of length one cell-half means the policy is certain. Diff panels use the same scale.

This module draws maze panels and lays images out (`tile`, `figure`, `grid_figure`), and holds the colours
they share with the charts (steer/report/style.py takes its palette from here). The charts without a maze
(metric bands, heat maps, bar and interval rows) are matplotlib figures in steer/report/charts/. The maze
panels stay Pillow: each square and arrow is placed on an exact pixel grid, which is what makes a vector field
legible at 22 pixels a square and byte-identical from run to run; `diverging` colours their squares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from steer.maze.layout import WALL, Maze, Square

WALL_RGB = (52, 52, 60)
OPEN_RGB = (244, 241, 232)
CHEESE_RGB = (250, 196, 20)
PATH_RGB = (214, 230, 246)  # squares opened by an edit (the top-right path)
ARROW_RGB = (24, 48, 120)
DIFF_RGB = (200, 30, 40)
DS_RGB = (240, 120, 0)
CORNER_RGB = (40, 150, 200)
TEXT_RGB = (20, 20, 20)
BG_RGB = (255, 255, 255)
START_RGB = (120, 120, 130)  # the start square's corner mark
TICK_RGB = (120, 120, 120)
# Signed values (a maze's squares or a chart's cells): blue below zero, white at zero, red above; the charts'
# colour map (style.DIVERGING) runs through the same three colours, so a square and a cell of equal value match.
NEG_RGB = (33, 102, 172)
POS_RGB = (178, 24, 43)
NA_RGB = (225, 225, 225)  # undefined


def diverging(value: float, limit: float) -> tuple[int, int, int]:
    """White at 0, blue toward -limit, red toward +limit (linear in RGB, as style.DIVERGING)."""
    t = max(-1.0, min(1.0, value / limit)) if limit > 0 else 0.0
    end = POS_RGB if t > 0 else NEG_RGB
    return tuple(round(255 + (c - 255) * abs(t)) for c in end)  # type: ignore[return-value]


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def text_width(text: str, size: int) -> float:
    """Width in pixels of `text` in the default font at `size`."""
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font(size))


@dataclass(frozen=True)
class Panel:
    maze: Maze
    positions: Sequence[Square]
    arrows: np.ndarray  # (N, 2): x right, y up
    caption: str
    color: tuple[int, int, int] = ARROW_RGB


def _crop(maze: Maze) -> tuple[int, int, int, int]:
    """Rows and cols (inclusive) of the open part of the world plus one ring of wall."""
    rows, cols = np.nonzero(maze.grid != WALL)
    w = maze.world_dim - 1
    return max(rows.min() - 1, 0), min(rows.max() + 1, w), max(cols.min() - 1, 0), min(cols.max() + 1, w)


def draw_panel(panel: Panel, cell: int, base: Maze | None = None) -> Image.Image:
    """One maze panel drawn, walls to arrows to caption: long because the panel has many layers, each a few
    lines, drawn in order on one image."""
    maze = panel.maze
    r0, r1, c0, c1 = _crop(base or maze)
    # Row numbers on the left and column numbers below: the [row, col] a spec's edits use, row 0 at the bottom.
    ox, tick_h = 22, 16
    h, w = (r1 - r0 + 1) * cell, (c1 - c0 + 1) * cell
    size = 15
    caption_h = 2 * (size + 5) + 8
    img = Image.new("RGB", (ox + w, h + tick_h + caption_h), BG_RGB)
    d = ImageDraw.Draw(img)

    def box(sq: Square, inset: float = 0) -> tuple[float, float, float, float]:
        x = ox + (sq[1] - c0) * cell
        y = (r1 - sq[0]) * cell  # row 0 is the bottom of the world, the top of an image
        return (x + inset, y + inset, x + cell - inset, y + cell - inset)

    ticks = font(10)
    for row in range(r0, r1 + 1):
        d.text((ox - 4, (r1 - row + 0.5) * cell), str(row), fill=TICK_RGB, font=ticks, anchor="rm")
    for col in range(c0, c1 + 1):
        d.text((ox + (col - c0 + 0.5) * cell, h + 3), str(col), fill=TICK_RGB, font=ticks, anchor="mt")

    opened = (
        set()
        if base is None
        else {(int(r), int(c)) for r, c in zip(*np.nonzero((maze.grid != WALL) & (base.grid == WALL)), strict=True)}
    )
    for row in range(r0, r1 + 1):
        for col in range(c0, c1 + 1):
            code = maze.grid[row, col]
            color = WALL_RGB if code == WALL else (PATH_RGB if (row, col) in opened else OPEN_RGB)
            d.rectangle(box((row, col)), fill=color)
    corner = maze.top_right_square
    d.rectangle(box(corner, 1), outline=CORNER_RGB, width=max(2, cell // 12))
    ds = maze.decision_square()
    if ds is not None:
        d.rectangle(box(ds, 1), outline=DS_RGB, width=max(2, cell // 10))
    if maze.cheese is not None:
        d.ellipse(box(maze.cheese, cell * 0.2), fill=CHEESE_RGB, outline=(150, 110, 0), width=2)
    sx0, _, _, sy1 = box(maze.start_square)
    mark = max(4.0, cell * 0.28)
    d.polygon([(sx0 + 1, sy1 - 1), (sx0 + 1, sy1 - 1 - mark), (sx0 + 1 + mark, sy1 - 1)], fill=START_RGB)

    half = cell * 0.45
    for sq, (ax, ay) in zip(panel.positions, panel.arrows, strict=True):
        x0, y0, x1, y1 = box(sq)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        dx, dy = float(ax) * half, -float(ay) * half
        length = (dx * dx + dy * dy) ** 0.5
        if length < 1.0:
            d.ellipse((cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5), fill=panel.color)
            continue
        tip = (cx + dx, cy + dy)
        d.line([(cx, cy), tip], fill=panel.color, width=max(2, cell // 14))
        ux, uy = dx / length, dy / length
        head = min(cell * 0.22, length * 0.6)
        left = (tip[0] - head * (ux + 0.6 * uy), tip[1] - head * (uy - 0.6 * ux))
        right = (tip[0] - head * (ux - 0.6 * uy), tip[1] - head * (uy + 0.6 * ux))
        d.polygon([tip, left, right], fill=panel.color)

    for i, line in enumerate(panel.caption.split("\n")[:2]):
        d.text((4, h + tick_h + 6 + i * (size + 5)), line, fill=TEXT_RGB, font=font(size))
    return img


def _draw_panels(panels: Sequence[Panel], base: Maze | None) -> list[Image.Image]:
    """Draw panels with one shared cell size and crop (that of `base`, else the first panel's maze)."""
    ref = base or panels[0].maze
    r0, r1, c0, c1 = _crop(ref)
    cell = int(max(22, min(56, 440 // max(r1 - r0 + 1, c1 - c0 + 1))))
    return [draw_panel(p, cell, base=ref) for p in panels]


def tile(
    title: str, images: Sequence[Image.Image], columns: int, footer: str = "", gap: int = 16, min_width: int = 760
) -> Image.Image:
    """Images in rows of `columns` (cells sized to the largest) under a title, with an optional footer."""
    pad, title_h = 12, 34
    lines = footer.split("\n") if footer else []
    footer_h = 22 * len(lines) + (4 if lines else 0)
    cw, ch = max(im.width for im in images), max(im.height for im in images)
    n_cols = min(columns, len(images))
    n_rows = -(-len(images) // n_cols)
    texts = [text_width(title, 18), *(text_width(line, 13) for line in lines)]
    width = int(max(2 * pad + n_cols * cw + (n_cols - 1) * gap, 2 * pad + max(texts), min_width))
    height = 2 * pad + title_h + n_rows * ch + (n_rows - 1) * gap + footer_h
    out = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(out)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(18))
    for k, im in enumerate(images):
        row, col = divmod(k, n_cols)
        out.paste(im, (pad + col * (cw + gap), pad + title_h + row * (ch + gap)))
    for i, line in enumerate(lines):
        d.text((pad, height - pad - footer_h + 6 + 22 * i), line, fill=(90, 90, 90), font=font(13))
    return out


def figure(title: str, panels: Sequence[Panel], footer: str = "", base: Maze | None = None) -> Image.Image:
    """Panels side by side under a title; all panels share one cell size and crop."""
    return tile(title, _draw_panels(panels, base), columns=len(panels), footer=footer)


LEGEND = (
    "yellow: cheese · orange box: decision square · blue box: inner top-right square · grey corner: start "
    "square · arrows: net action · numbers: [row, col], row 0 at the bottom"
)


def grid_figure(
    title: str, panels: Sequence[Panel], columns: int, footer: str = "", base: Maze | None = None
) -> Image.Image:
    """Panels in rows of `columns` under one title; like `figure`, all panels share one cell size and crop."""
    return tile(title, _draw_panels(panels, base), columns, footer=footer)
