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
START_RGB = (120, 120, 130)  # the start square's corner mark
TICK_RGB = (120, 120, 120)


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


def save_png(img: Image.Image, path: Path) -> None:
    buf = io.BytesIO()
    # zlib's default level without `optimize`: 3x faster to write (it was a third of a 100-seed apply's time)
    # for files about 10% larger.
    img.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())


# -- study figures: panel grids, metric-vs-coefficient charts, heat maps --------------------------------


def grid_figure(
    title: str, panels: Sequence[Panel], columns: int, footer: str = "", base: Maze | None = None
) -> Image.Image:
    """Panels in rows of `columns` under one title; like `figure`, all panels share one cell size and crop."""
    return tile(title, _draw_panels(panels, base), columns, footer=footer)


@dataclass(frozen=True)
class BandSeries:
    """One metric over the x positions of a chart: median line and 25–75% band; None where undefined."""

    title: str
    median: Sequence[float | None]
    q25: Sequence[float | None]
    q75: Sequence[float | None]
    n: Sequence[int]
    baseline: float | None = None  # drawn as a dashed line, e.g. the unpatched median
    band: str = "median and 25-75% band"  # what line and band show, for the subtitle


LINE_RGB = (24, 48, 120)
BAND_RGB = (196, 208, 236)
BASELINE_RGB = (150, 150, 150)
GRID_RGB = (228, 228, 228)


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) covering [low, high]."""
    span = max(high - low, 1e-9)
    raw = span / max(count - 1, 1)
    power = 10 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.floor(low / step) * step
    return [float(v) for v in np.arange(first, high + step * 0.5, step)]


def _tick_label(value: float, step: float) -> str:
    decimals = max(0, int(-np.floor(np.log10(step)))) if step < 1 else 0
    return f"{value:.{decimals}f}"


def _dashed_hline(d: ImageDraw.ImageDraw, x0: float, x1: float, y: float, color: tuple[int, int, int]) -> None:
    x = x0
    while x < x1:
        d.line([(x, y), (min(x + 6, x1), y)], fill=color, width=2)
        x += 11


def _runs(values: Sequence[float | None]) -> list[list[int]]:
    """Index runs where values are defined: a line or band is broken where a metric is undefined."""
    runs: list[list[int]] = []
    for i, v in enumerate(values):
        if v is None:
            continue
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def band_chart(series: BandSeries, xlabels: Sequence[str], size: tuple[int, int] = (440, 300)) -> Image.Image:
    """One small chart: x at evenly spaced positions labelled `xlabels`, y auto-ranged with round ticks."""
    width, height = size
    left, right, top, bottom = 56, 14, 44, 46
    img = Image.new("RGB", size, BG_RGB)
    d = ImageDraw.Draw(img)
    n_max = max(series.n, default=0)
    d.text((left, 8), series.title, fill=TEXT_RGB, font=font(15))
    d.text((left, 26), f"{series.band} over mazes (n <= {n_max})", fill=(110, 110, 110), font=font(11))
    present = [v for v in (*series.q25, *series.q75, *series.median, series.baseline) if v is not None]
    if not present:
        d.text((left, height // 2), "undefined in every maze", fill=(120, 120, 120), font=font(13))
        return img
    lo, hi = min(present), max(present)
    pad = 0.08 * (hi - lo) or max(0.05 * abs(hi), 0.05)
    y_lo, y_hi = lo - pad, hi + pad
    ticks = [t for t in nice_ticks(y_lo, y_hi) if y_lo <= t <= y_hi]
    plot_w, plot_h = width - left - right, height - top - bottom

    def px(i: int) -> float:
        return left + (plot_w * (i + 0.5) / len(xlabels))

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    for t in ticks:
        d.line([(left, py(t)), (width - right, py(t))], fill=GRID_RGB, width=1)
        label = _tick_label(t, step)
        d.text((left - 6 - d.textlength(label, font=font(11)), py(t) - 7), label, fill=TEXT_RGB, font=font(11))
    for i, label in enumerate(xlabels):
        d.text((px(i) - d.textlength(label, font=font(11)) / 2, top + plot_h + 6), label, fill=TEXT_RGB, font=font(11))
    d.text((left + plot_w / 2 - 30, height - 18), "coefficient", fill=(90, 90, 90), font=font(11))
    d.rectangle((left, top, width - right, top + plot_h), outline=(160, 160, 160))
    if series.baseline is not None:
        _dashed_hline(d, left, width - right, py(series.baseline), BASELINE_RGB)
    for run in _runs([None if a is None or b is None else a for a, b in zip(series.q25, series.q75, strict=True)]):
        upper = [(px(i), py(series.q75[i])) for i in run]  # type: ignore[arg-type]
        lower = [(px(i), py(series.q25[i])) for i in reversed(run)]  # type: ignore[arg-type]
        if len(run) == 1:  # a single defined point: draw its band as a short bar
            d.line([(upper[0][0], upper[0][1]), (lower[0][0], lower[0][1])], fill=BAND_RGB, width=10)
        else:
            d.polygon(upper + lower, fill=BAND_RGB)
    for run in _runs(series.median):
        points = [(px(i), py(series.median[i])) for i in run]  # type: ignore[arg-type]
        if len(points) > 1:
            d.line(points, fill=LINE_RGB, width=3)
        for x, y in points:
            d.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=LINE_RGB)
    return img


def band_charts(
    title: str, xlabels: Sequence[str], series: Sequence[BandSeries], footer: str = "", columns: int = 3
) -> Image.Image:
    """Small-multiple charts of several metrics against the same x positions, in rows of `columns`."""
    return tile(title, [band_chart(s, xlabels) for s in series], columns, footer=footer, gap=8, min_width=0)


NEG_RGB = (33, 102, 172)
POS_RGB = (178, 24, 43)
NA_RGB = (225, 225, 225)


def diverging(value: float, limit: float) -> tuple[int, int, int]:
    """White at 0, blue toward -limit, red toward +limit."""
    t = max(-1.0, min(1.0, value / limit)) if limit > 0 else 0.0
    end = POS_RGB if t > 0 else NEG_RGB
    return tuple(round(255 + (c - 255) * abs(t)) for c in end)  # type: ignore[return-value]


def heatmap(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Sequence[Sequence[float | None]],
    notes: Sequence[Sequence[str]] | None = None,
    axis_titles: tuple[str, str] = ("rows", "columns"),
    footer: str = "",
) -> Image.Image:
    """A matrix as coloured cells (diverging, symmetric about 0) with each value and an optional note written in."""
    cell_w, cell_h = 112, 58
    label_w = max([text_width(lbl, 13) for lbl in row_labels] + [60]) + 16
    pad, title_h, header_h, scale_h = 12, 34, 44, 44
    footer_h = 22 * len(footer.split("\n")) if footer else 0
    n_rows, n_cols = len(row_labels), len(col_labels)
    texts = [text_width(title, 18), *(text_width(line, 13) for line in footer.split("\n") if footer)]
    width = int(max(2 * pad + label_w + n_cols * cell_w, 2 * pad + max(texts), 560))
    height = 2 * pad + title_h + header_h + n_rows * cell_h + scale_h + footer_h
    out = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(out)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(18))
    x0, y0 = pad + label_w, pad + title_h + header_h
    d.text(
        (pad, pad + title_h), f"rows: {axis_titles[0]} · columns: {axis_titles[1]}", fill=(90, 90, 90), font=font(12)
    )
    for j, label in enumerate(col_labels):
        d.text((x0 + j * cell_w + 6, pad + title_h + 20), label, fill=TEXT_RGB, font=font(13))
    present = [abs(v) for row in values for v in row if v is not None]
    limit = max(present, default=0.0)
    for i, label in enumerate(row_labels):
        y = y0 + i * cell_h
        d.text((pad, y + cell_h / 2 - 8), label, fill=TEXT_RGB, font=font(13))
        for j in range(n_cols):
            v = values[i][j]
            x = x0 + j * cell_w
            fill = NA_RGB if v is None else diverging(v, limit)
            d.rectangle((x, y, x + cell_w - 2, y + cell_h - 2), fill=fill, outline=(200, 200, 200))
            strong = v is not None and limit > 0 and abs(v) / limit > 0.6
            ink = (255, 255, 255) if strong else TEXT_RGB
            d.text((x + 8, y + 8), "n/a" if v is None else f"{v:+.3f}", fill=ink, font=font(17))
            if notes and notes[i][j]:
                d.text((x + 8, y + 34), notes[i][j], fill=ink, font=font(11))
    _scale_bar(d, x0, y0 + n_rows * cell_h + 12, limit)
    for k, line in enumerate(footer.split("\n") if footer else []):
        d.text((pad, height - pad - footer_h + 4 + 22 * k), line, fill=(90, 90, 90), font=font(13))
    return out


def text_width(text: str, size: int) -> float:
    """Width in pixels of `text` in the default font at `size`."""
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font(size))


def _scale_bar(d: ImageDraw.ImageDraw, x: float, y: float, limit: float, width: int = 220) -> None:
    for k in range(width):
        v = (2 * k / (width - 1) - 1) * limit
        d.line([(x + k, y), (x + k, y + 10)], fill=diverging(v, limit))
    for frac, value in ((0.0, -limit), (0.5, 0.0), (1.0, limit)):
        label = f"{value:+.2f}" if value else "0"
        d.text((x + frac * width - text_width(label, 11) / 2, y + 13), label, fill=TEXT_RGB, font=font(11))


def bar_rows(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    reference: float | None = None,
    footer: str = "",
    value_range: tuple[float, float] = (0.0, 1.0),
    highlight: str | None = None,
) -> Image.Image:
    """One horizontal bar per label (legible with 40+ rows); a dashed line marks `reference`."""
    row_h, pad, label_w, bar_w = 18, 12, 250, 420
    top = pad + 34
    height = top + row_h * len(labels) + 40 + (26 if footer else 0)
    width = int(max(pad * 2 + label_w + bar_w + 70, text_width(title, 16) + 2 * pad))
    img = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(img)
    d.text((pad, pad), title, fill=TEXT_RGB, font=font(16))
    lo, hi = value_range

    def x_of(v: float) -> float:
        return pad + label_w + bar_w * (min(max(v, lo), hi) - lo) / (hi - lo)

    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        bold = label == highlight
        d.text((pad, y + 2), label, fill=(180, 60, 0) if bold else TEXT_RGB, font=font(13))
        if value is None:
            d.text((x_of(lo) + 4, y + 2), "n/a", fill=(120, 120, 120), font=font(12))
            continue
        d.rectangle((x_of(lo), y + 3, x_of(value), y + row_h - 3), fill=(200, 90, 20) if bold else ARROW_RGB)
        d.text((x_of(value) + 4, y + 2), f"{value:.2f}", fill=TEXT_RGB, font=font(12))
    axis_y = top + row_h * len(labels) + 4
    d.line((x_of(lo), axis_y, x_of(hi), axis_y), fill=TEXT_RGB)
    for t in nice_ticks(lo, hi):
        d.line((x_of(t), axis_y, x_of(t), axis_y + 4), fill=TEXT_RGB)
        d.text((x_of(t) - 8, axis_y + 6), f"{t:g}", fill=TEXT_RGB, font=font(12))
    if reference is not None:
        _dashed_vline(d, x_of(reference), top, axis_y, (90, 90, 90))
    if footer:
        d.text((pad, height - pad - 18), footer, fill=(90, 90, 90), font=font(13))
    return img


def _dashed_vline(d: ImageDraw.ImageDraw, x: float, y0: float, y1: float, color: tuple[int, int, int]) -> None:
    y = y0
    while y < y1:
        d.line((x, y, x, min(y + 5, y1)), fill=color, width=2)
        y += 9
