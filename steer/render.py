"""PNG figures: vector fields drawn over a clean schematic of the maze.

The schematic is cropped to the open part of the world (plus one wall ring), so a 3x3 maze in a 15x15
world is as legible as a full one. Arrows point where the policy's probability mass moves the mouse;
an arrow of length one cell-half means the policy is certain. Diff panels use the same scale.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from steer.io import atomic_write_bytes
from steer.maze import WALL, Maze, Square

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


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


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
    maze = panel.maze
    r0, r1, c0, c1 = _crop(base or maze)
    h, w = (r1 - r0 + 1) * cell, (c1 - c0 + 1) * cell
    size = 15
    caption_h = 2 * (size + 5) + 8
    img = Image.new("RGB", (w, h + caption_h), BG_RGB)
    d = ImageDraw.Draw(img)

    def box(sq: Square, inset: float = 0) -> tuple[float, float, float, float]:
        x = (sq[1] - c0) * cell
        y = (r1 - sq[0]) * cell  # row 0 is the bottom of the world, the top of an image
        return (x + inset, y + inset, x + cell - inset, y + cell - inset)

    opened = set() if base is None else {
        (int(r), int(c)) for r, c in zip(*np.nonzero((maze.grid != WALL) & (base.grid == WALL)), strict=True)
    }
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
        d.text((4, h + 6 + i * (size + 5)), line, fill=TEXT_RGB, font=font(size))
    return img


def figure(title: str, panels: Sequence[Panel], footer: str = "", base: Maze | None = None) -> Image.Image:
    """Panels side by side under a title; all panels share one cell size and crop."""
    ref = base or panels[0].maze
    r0, r1, c0, c1 = _crop(ref)
    cells = max(r1 - r0 + 1, c1 - c0 + 1)
    cell = int(max(22, min(56, 440 // cells)))
    drawn = [draw_panel(p, cell, base=ref) for p in panels]
    gap, pad, title_h = 16, 12, 34
    footer_h = 26 if footer else 0
    width = sum(im.width for im in drawn) + gap * (len(drawn) - 1) + 2 * pad
    width = max(width, 760)
    height = max(im.height for im in drawn) + title_h + footer_h + 2 * pad
    out = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(out)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(18))
    x = pad
    for im in drawn:
        out.paste(im, (x, pad + title_h))
        x += im.width + gap
    if footer:
        d.text((pad, height - pad - footer_h + 6), footer, fill=(90, 90, 90), font=font(13))
    return out


LEGEND = "yellow: cheese · orange box: decision square · blue box: inner top-right square · arrows: net action"


def save_png(img: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())
