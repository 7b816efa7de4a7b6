"""PNG figures: vector fields drawn over a clean schematic of the maze.

The schematic is cropped to the open part of the world (plus one wall ring), so a 3x3 maze in a 15x15
world is as legible as a full one. Arrows point where the policy's probability mass moves the mouse;
an arrow of length one cell-half means the policy is certain. Diff panels use the same scale.

This module draws maze panels and lays images out (`tile`, `figure`, `grid_figure`), and holds the colours
they share with the charts (steer/report/style.py takes its palette from here). The charts without a maze
(metric bands, heat maps, bar and interval rows) are matplotlib figures in steer/report/charts/. Where each part
of a panel and of a tiled figure goes (`PanelFrame`, `arrow_shapes`, `tile_layout`) is computed apart from the
drawing, so that the figure's vector twin (steer/report/field_vector.py, for `figures: [svg, pdf]`) draws the
same geometry with matplotlib. The PNG stays Pillow's: each square and arrow is placed on an exact pixel grid,
which keeps a vector field legible at 22 pixels a square, fast enough for a thousand mazes, and byte for byte
what resumed runs and the golden tests compare; `diverging` colours the squares of other maze panels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
CHEESE_EDGE_RGB = (150, 110, 0)
FOOTER_RGB = (90, 90, 90)
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


@dataclass(frozen=True)
class PanelFrame:
    """Where a maze panel's parts go, in pixels of its image (y down): the crop, one cell's size, row numbers on
    the left and column numbers below (the [row, col] a spec's edits use, row 0 at the bottom), two caption lines
    under the maze."""

    r0: int
    r1: int
    c0: int
    c1: int
    cell: int
    ox: int = 22  # left of the maze: the row numbers
    tick_h: int = 16  # below it: the column numbers
    caption_size: int = 15

    @property
    def h(self) -> int:
        return (self.r1 - self.r0 + 1) * self.cell

    @property
    def w(self) -> int:
        return (self.c1 - self.c0 + 1) * self.cell

    @property
    def size(self) -> tuple[int, int]:
        """The panel image's (width, height)."""
        return self.ox + self.w, self.h + self.tick_h + 2 * (self.caption_size + 5) + 8

    def box(self, sq: Square, inset: float = 0) -> tuple[float, float, float, float]:
        x = self.ox + (sq[1] - self.c0) * self.cell
        y = (self.r1 - sq[0]) * self.cell  # row 0 is the bottom of the world, the top of an image
        return (x + inset, y + inset, x + self.cell - inset, y + self.cell - inset)

    def row_tick(self, row: int) -> tuple[float, float]:
        """Where a row's number is anchored (its right end, vertically centred)."""
        return self.ox - 4, (self.r1 - row + 0.5) * self.cell

    def col_tick(self, col: int) -> tuple[float, float]:
        """Where a column's number is anchored (its top, horizontally centred)."""
        return self.ox + (col - self.c0 + 0.5) * self.cell, self.h + 3

    def caption_at(self, i: int) -> tuple[float, float]:
        """The top left of caption line `i`."""
        return 4, self.h + self.tick_h + 6 + i * (self.caption_size + 5)

    def squares(self) -> list[Square]:
        return [(row, col) for row in range(self.r0, self.r1 + 1) for col in range(self.c0, self.c1 + 1)]


def panel_frame(ref: Maze, cell: int) -> PanelFrame:
    """The frame of a panel cropped as `ref` is."""
    return PanelFrame(*(int(v) for v in _crop(ref)), cell=cell)


def cell_size(ref: Maze) -> int:
    """One cell's pixels: a maze of any size fits about 440 pixels, each cell 22 to 56."""
    r0, r1, c0, c1 = _crop(ref)
    return int(max(22, min(56, 440 // max(r1 - r0 + 1, c1 - c0 + 1))))


def opened_squares(maze: Maze, base: Maze | None) -> set[Square]:
    """The squares open in `maze` and walls in `base` (opened by an edit, drawn as a path)."""
    if base is None:
        return set()
    return {(int(r), int(c)) for r, c in zip(*np.nonzero((maze.grid != WALL) & (base.grid == WALL)), strict=True)}


def square_rgb(maze: Maze, sq: Square, opened: set[Square]) -> tuple[int, int, int]:
    return WALL_RGB if maze.grid[sq] == WALL else (PATH_RGB if sq in opened else OPEN_RGB)


def outline_widths(cell: int) -> tuple[int, int]:
    """The top-right box's and the decision square's outline widths."""
    return max(2, cell // 12), max(2, cell // 10)


def start_mark(frame: PanelFrame, maze: Maze) -> list[tuple[float, float]]:
    """The start square's corner mark: a triangle in its bottom-left corner."""
    sx0, _, _, sy1 = frame.box(maze.start_square)
    mark = max(4.0, frame.cell * 0.28)
    return [(sx0 + 1, sy1 - 1), (sx0 + 1, sy1 - 1 - mark), (sx0 + 1 + mark, sy1 - 1)]


@dataclass(frozen=True)
class ArrowShape:
    """One square's arrow in pixels: a shaft from the square's centre to `tip` with a triangular head
    (`tip`, `left`, `right`), or a dot at the centre where the arrow is shorter than a pixel (tip None)."""

    centre: tuple[float, float]
    tip: tuple[float, float] | None = None
    left: tuple[float, float] | None = None
    right: tuple[float, float] | None = None


def shaft_width(cell: int) -> int:
    return max(2, cell // 14)


def arrow_shapes(panel: Panel, frame: PanelFrame) -> list[ArrowShape]:
    """Each square's arrow: length one cell-half at certainty (x right, y up in the arrows; y down in pixels)."""
    cell = frame.cell
    half = cell * 0.45
    shapes = []
    for sq, (ax, ay) in zip(panel.positions, panel.arrows, strict=True):
        x0, y0, x1, y1 = frame.box(sq)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        dx, dy = float(ax) * half, -float(ay) * half
        length = (dx * dx + dy * dy) ** 0.5
        if length < 1.0:
            shapes.append(ArrowShape((cx, cy)))
            continue
        tip = (cx + dx, cy + dy)
        ux, uy = dx / length, dy / length
        head = min(cell * 0.22, length * 0.6)
        left = (tip[0] - head * (ux + 0.6 * uy), tip[1] - head * (uy - 0.6 * ux))
        right = (tip[0] - head * (ux - 0.6 * uy), tip[1] - head * (uy + 0.6 * ux))
        shapes.append(ArrowShape((cx, cy), tip, left, right))
    return shapes


def draw_panel(panel: Panel, cell: int, base: Maze | None = None) -> Image.Image:
    """One maze panel drawn, walls to arrows to caption, in `PanelFrame`'s places."""
    maze = panel.maze
    frame = panel_frame(base or maze, cell)
    img = Image.new("RGB", frame.size, BG_RGB)
    d = ImageDraw.Draw(img)
    ticks = font(10)
    for row in range(frame.r0, frame.r1 + 1):
        d.text(frame.row_tick(row), str(row), fill=TICK_RGB, font=ticks, anchor="rm")
    for col in range(frame.c0, frame.c1 + 1):
        d.text(frame.col_tick(col), str(col), fill=TICK_RGB, font=ticks, anchor="mt")
    opened = opened_squares(maze, base)
    for sq in frame.squares():
        d.rectangle(frame.box(sq), fill=square_rgb(maze, sq, opened))
    corner_w, ds_w = outline_widths(cell)
    d.rectangle(frame.box(maze.top_right_square, 1), outline=CORNER_RGB, width=corner_w)
    ds = maze.decision_square()
    if ds is not None:
        d.rectangle(frame.box(ds, 1), outline=DS_RGB, width=ds_w)
    if maze.cheese is not None:
        d.ellipse(frame.box(maze.cheese, cell * 0.2), fill=CHEESE_RGB, outline=CHEESE_EDGE_RGB, width=2)
    d.polygon(start_mark(frame, maze), fill=START_RGB)
    for shape in arrow_shapes(panel, frame):
        cx, cy = shape.centre
        if shape.tip is None:
            d.ellipse((cx - 1.5, cy - 1.5, cx + 1.5, cy + 1.5), fill=panel.color)
            continue
        d.line([shape.centre, shape.tip], fill=panel.color, width=shaft_width(cell))
        d.polygon([shape.tip, shape.left, shape.right], fill=panel.color)
    for i, line in enumerate(panel.caption.split("\n")[:2]):
        d.text(frame.caption_at(i), line, fill=TEXT_RGB, font=font(frame.caption_size))
    return img


def _draw_panels(panels: Sequence[Panel], base: Maze | None) -> list[Image.Image]:
    """Draw panels with one shared cell size and crop (that of `base`, else the first panel's maze)."""
    ref = base or panels[0].maze
    cell = cell_size(ref)
    return [draw_panel(p, cell, base=ref) for p in panels]


@dataclass(frozen=True)
class TileLayout:
    """Where a tiled figure's parts go, in pixels (y down): the title, each image's top left, the footer lines."""

    width: int
    height: int
    origins: tuple[tuple[int, int], ...]  # each image's top left
    footer_ys: tuple[int, ...]  # each footer line's top
    pad: int = 12
    title_size: int = 18
    footer_size: int = 13


def tile_layout(
    title: str,
    sizes: Sequence[tuple[int, int]],
    columns: int,
    footer: str = "",
    gap: int = 16,
    min_width: int = 760,
    measure: Callable[[str, int], float] | None = None,
) -> TileLayout:
    """Images of `sizes` in rows of `columns` (cells sized to the largest) under a title, with an optional footer
    of lines; `measure(text, size)` gives a text's width (Pillow's font by default: the PNG's)."""
    measure = measure or text_width
    pad, title_h = 12, 34
    lines = footer.split("\n") if footer else []
    footer_h = 22 * len(lines) + (4 if lines else 0)
    cw, ch = max(w for w, _ in sizes), max(h for _, h in sizes)
    n_cols = min(columns, len(sizes))
    n_rows = -(-len(sizes) // n_cols)
    texts = [measure(title, 18), *(measure(line, 13) for line in lines)]
    width = int(max(2 * pad + n_cols * cw + (n_cols - 1) * gap, 2 * pad + max(texts), min_width))
    height = 2 * pad + title_h + n_rows * ch + (n_rows - 1) * gap + footer_h
    origins = []
    for k in range(len(sizes)):
        row, col = divmod(k, n_cols)
        origins.append((pad + col * (cw + gap), pad + title_h + row * (ch + gap)))
    footer_ys = tuple(height - pad - footer_h + 6 + 22 * i for i in range(len(lines)))
    return TileLayout(width, height, tuple(origins), footer_ys)


def tile(
    title: str, images: Sequence[Image.Image], columns: int, footer: str = "", gap: int = 16, min_width: int = 760
) -> Image.Image:
    """Images in rows of `columns` (cells sized to the largest) under a title, with an optional footer."""
    layout = tile_layout(title, [im.size for im in images], columns, footer, gap, min_width)
    out = Image.new("RGB", (layout.width, layout.height), BG_RGB)
    d = ImageDraw.Draw(out)
    d.text((layout.pad, layout.pad), title, fill=TEXT_RGB, font=font(layout.title_size))
    for im, origin in zip(images, layout.origins, strict=True):
        out.paste(im, origin)
    for line, y in zip(footer.split("\n") if footer else [], layout.footer_ys, strict=True):
        d.text((layout.pad, y), line, fill=FOOTER_RGB, font=font(layout.footer_size))
    return out


@dataclass(frozen=True)
class FieldFigure:
    """Maze panels under a title, in rows of `columns`, sharing one cell size and crop (that of `base`, else the
    first panel's maze), with a footer: drawn as a PNG by `image` and as a vector figure by
    steer.report.field_vector.field_twin."""

    title: str
    panels: tuple[Panel, ...]
    columns: int
    footer: str = ""
    base: Maze | None = None

    def image(self) -> Image.Image:
        return tile(self.title, _draw_panels(self.panels, self.base), self.columns, footer=self.footer)


def field_figure(
    title: str, panels: Sequence[Panel], footer: str = "", base: Maze | None = None, columns: int | None = None
) -> FieldFigure:
    """Panels side by side (or in rows of `columns`) under a title; all panels share one cell size and crop."""
    return FieldFigure(title, tuple(panels), columns or len(panels), footer, base)


def figure(title: str, panels: Sequence[Panel], footer: str = "", base: Maze | None = None) -> Image.Image:
    """Panels side by side under a title; all panels share one cell size and crop."""
    return field_figure(title, panels, footer, base).image()


LEGEND = (
    "yellow: cheese · orange box: decision square · blue box: inner top-right square · grey corner: start "
    "square · arrows: net action · numbers: [row, col], row 0 at the bottom"
)


def grid_figure(
    title: str, panels: Sequence[Panel], columns: int, footer: str = "", base: Maze | None = None
) -> Image.Image:
    """Panels in rows of `columns` under one title; like `figure`, all panels share one cell size and crop."""
    return field_figure(title, panels, footer, base, columns).image()
