"""Pictures of behaviour: an animated GIF of sampled episodes side by side, and occupancy maps with greedy paths.

Both draw on the maze schematic of `steer.report.render` (same colours, crop to the open part of the world plus one
wall ring, row 0 at the bottom), with Pillow only.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from steer.analysis.chain import Behaviour, GreedyPath
from steer.analysis.episodes import Episode
from steer.io import atomic_write_bytes
from steer.maze.layout import WALL, Maze, Square
from steer.report.render import (
    BG_RGB,
    CHEESE_RGB,
    CORNER_RGB,
    OPEN_RGB,
    TEXT_RGB,
    WALL_RGB,
    _crop,
    diverging,
    font,
    text_width,
    tile,
)

TRACE_RGBS = ((24, 48, 120), (200, 30, 40))  # first and second episode (original, patched)
MOUSE_RGB = (90, 90, 100)
OCCUPANCY_RGB = (40, 20, 110)  # the colour of the most visited square
MIN_VISITS = 0.01  # fewer expected visits than this are drawn as unvisited
ColorOf = Callable[[float], tuple[int, int, int] | None]


@dataclass(frozen=True)
class _Grid:
    """Pixel geometry of one maze panel: the crop (rows r0..r1, cols c0..c1 inclusive) and the cell size."""

    r0: int
    r1: int
    c0: int
    c1: int
    cell: int

    @classmethod
    def of(cls, maze: Maze, cell: int) -> _Grid:
        r0, r1, c0, c1 = (int(v) for v in _crop(maze))
        return cls(r0, r1, c0, c1, cell)

    @property
    def size(self) -> tuple[int, int]:
        return (self.c1 - self.c0 + 1) * self.cell, (self.r1 - self.r0 + 1) * self.cell

    def box(self, sq: Square, inset: float = 0) -> tuple[float, float, float, float]:
        x = (sq[1] - self.c0) * self.cell
        y = (self.r1 - sq[0]) * self.cell  # row 0 is the bottom of the world, the top of an image
        return (x + inset, y + inset, x + self.cell - inset, y + self.cell - inset)

    def center(self, sq: Square) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box(sq)
        return (x0 + x1) / 2, (y0 + y1) / 2


def _cell_for(maze: Maze, span: int) -> int:
    """Cell size so that the cropped maze is about `span` pixels across (as `render` sizes its panels)."""
    r0, r1, c0, c1 = _crop(maze)
    return int(max(8, min(56, span // max(r1 - r0 + 1, c1 - c0 + 1))))


def _schematic(maze: Maze, grid: _Grid, fills: dict[Square, tuple[int, int, int]] | None = None) -> Image.Image:
    """Walls, open squares (or `fills`), the inner top-right square's box and the cheese."""
    img = Image.new("RGB", grid.size, BG_RGB)
    d = ImageDraw.Draw(img)
    for row in range(grid.r0, grid.r1 + 1):
        for col in range(grid.c0, grid.c1 + 1):
            open_rgb = (fills or {}).get((row, col), OPEN_RGB)
            d.rectangle(grid.box((row, col)), fill=WALL_RGB if maze.grid[row, col] == WALL else open_rgb)
    d.rectangle(grid.box(maze.top_right_square, 1), outline=CORNER_RGB, width=max(2, grid.cell // 12))
    if maze.cheese is not None:
        d.ellipse(grid.box(maze.cheese, grid.cell * 0.2), fill=CHEESE_RGB, outline=(150, 110, 0), width=2)
    return img


def _draw_path(
    d: ImageDraw.ImageDraw, grid: _Grid, squares: Sequence[Square], color: tuple[int, int, int], offset: float = 0.0
) -> None:
    """A polyline through square centres; `offset` shifts it (as a fraction of a cell) so two paths stay apart."""
    shift = offset * grid.cell
    points = [(x + shift, y + shift) for x, y in (grid.center(sq) for sq in squares)]
    if len(points) > 1:
        d.line(points, fill=color, width=max(2, grid.cell // 6), joint="curve")
    if points:
        x, y = points[0]
        r = max(2.0, grid.cell * 0.12)
        d.rectangle((x - r, y - r, x + r, y + r), fill=color)  # the start


# -- animated episodes --------------------------------------------------------------------------------------


def outcome(episode: Episode) -> str:
    steps = f"{episode.steps} step{'' if episode.steps == 1 else 's'}"
    return f"cheese in {steps}" if episode.reached_cheese else f"timed out after {steps}"


def episode_frames(
    maze: Maze,
    episodes: Sequence[tuple[str, Episode]],
    title: str = "",
    max_frames: int = 120,
    span: int = 240,
) -> tuple[list[Image.Image], list[int]]:
    """Frames (and the step each shows) of labelled episodes side by side, each tracing its path so far.

    Episodes longer than `max_frames` steps are shown at evenly spaced steps; the last frame is the end.
    """
    cell = _cell_for(maze, span)
    grid = _Grid.of(maze, cell)
    base = _schematic(maze, grid)
    paths = [list(ep.squares) for _, ep in episodes]
    last = max(len(p) - 1 for p in paths)
    shown = sorted({round(float(t)) for t in np.linspace(0, last, min(max_frames, last + 1))})
    pad, gap, title_h, caption_h = 8, 12, (24 if title else 0), 44
    w, h = grid.size
    width = 2 * pad + len(episodes) * w + (len(episodes) - 1) * gap
    width = int(max(width, text_width(title, 15) + 2 * pad if title else 0))
    height = 2 * pad + title_h + h + caption_h
    frames = []
    for t in shown:
        frame = Image.new("RGB", (width, height), BG_RGB)
        d = ImageDraw.Draw(frame)
        if title:
            d.text((pad, pad), title, fill=TEXT_RGB, font=font(15))
        for k, ((label, ep), path) in enumerate(zip(episodes, paths, strict=True)):
            x0, y0 = pad + k * (w + gap), pad + title_h
            panel = base.copy()
            pd = ImageDraw.Draw(panel)
            now = min(t, len(path) - 1)
            color = TRACE_RGBS[k % len(TRACE_RGBS)]
            _draw_path(pd, grid, path[: now + 1], color)
            cx, cy = grid.center(path[now])
            r = grid.cell * 0.3
            if path[now] == maze.cheese:  # a ring, so that the cheese it reached shows through
                pd.ellipse((cx - r, cy - r, cx + r, cy + r), outline=MOUSE_RGB, width=max(2, grid.cell // 10))
            else:
                pd.ellipse((cx - r, cy - r, cx + r, cy + r), fill=MOUSE_RGB, outline=(255, 255, 255), width=1)
            frame.paste(panel, (x0, y0))
            d.text((x0, y0 + h + 4), f"{label}: {outcome(ep)}", fill=color, font=font(13))
            step = f"step {ep.steps} (ended)" if t >= len(path) - 1 else f"step {t}"
            d.text((x0, y0 + h + 22), step, fill=TEXT_RGB, font=font(13))
        frames.append(frame)
    return frames, shown


def episode_gif(
    path: Path,
    maze: Maze,
    episodes: Sequence[tuple[str, Episode]],
    title: str = "",
    max_frames: int = 120,
    frame_ms: int = 90,
    hold_ms: int = 2000,
) -> int:
    """Write an animated GIF of `episodes` (e.g. `[("original", a), ("patched", b)]`); returns its size in bytes."""
    data = episode_gif_bytes(maze, episodes, title, max_frames, frame_ms, hold_ms)
    atomic_write_bytes(Path(path), data)
    return len(data)


def episode_gif_bytes(
    maze: Maze,
    episodes: Sequence[tuple[str, Episode]],
    title: str = "",
    max_frames: int = 120,
    frame_ms: int = 90,
    hold_ms: int = 2000,
) -> bytes:
    """The animated GIF of `episode_gif`, as bytes (for a report's files)."""
    frames, _ = episode_frames(maze, episodes, title, max_frames)
    # One palette for every frame (taken from the last, which holds every colour drawn) keeps colours steady
    # and lets the GIF writer store each frame as the small region that changed.
    palette = frames[-1].quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    indexed = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    buf = io.BytesIO()
    durations = [frame_ms] * (len(indexed) - 1) + [hold_ms]
    indexed[0].save(
        buf,
        format="GIF",
        save_all=True,
        append_images=indexed[1:],
        duration=durations,
        loop=0,
        optimize=False,
        disposal=1,
    )
    return buf.getvalue()


# -- occupancy maps ----------------------------------------------------------------------------------------


def _occupancy_rgb(value: float, vmax: float) -> tuple[int, int, int] | None:
    """Log scale from MIN_VISITS (near white) to `vmax` (OCCUPANCY_RGB); None below MIN_VISITS."""
    if value < MIN_VISITS or vmax <= MIN_VISITS:
        return None
    t = np.log(value / MIN_VISITS) / np.log(vmax / MIN_VISITS)
    t = 0.12 + 0.88 * min(1.0, t)  # the faintest visited square still differs from an unvisited one
    return tuple(round(255 + (c - 255) * t) for c in OCCUPANCY_RGB)  # type: ignore[return-value]


def _occupancy_panel(
    maze: Maze, grid: _Grid, values: np.ndarray, color_of: ColorOf, paths: Sequence[GreedyPath], caption: Sequence[str]
) -> Image.Image:
    fills = {}
    for sq in maze.open_squares():
        rgb = color_of(float(values[sq]))
        if rgb is not None:
            fills[sq] = rgb
    img = _schematic(maze, grid, fills)
    d = ImageDraw.Draw(img)
    for k, greedy in enumerate(paths):
        color = TRACE_RGBS[k % len(TRACE_RGBS)] if len(paths) > 1 else (230, 120, 0)
        _draw_path(d, grid, greedy.squares, color, offset=0.16 * (k - (len(paths) - 1) / 2))
    w, h = grid.size
    out = Image.new(
        "RGB", (max(w, int(max(text_width(c, 13) for c in caption)) + 4), h + 20 * len(caption) + 6), BG_RGB
    )
    out.paste(img, (0, 0))
    od = ImageDraw.Draw(out)
    for i, line in enumerate(caption):
        od.text((2, h + 5 + 20 * i), line, fill=TEXT_RGB, font=font(13))
    return out


def behaviour_caption(label: str, b: Behaviour) -> list[str]:
    # Steps given a success that almost never happens would read as a typical episode length.
    steps = "n/a" if b.steps_to_cheese is None or b.p_cheese < 1e-3 else f"{b.steps_to_cheese:.1f}"
    return [
        f"{label}: P(cheese) {b.p_cheese:.3f}, steps {steps}",
        f"P(top-right) {b.p_top_right:.3f}; greedy: {b.greedy.end}",
    ]


def occupancy_figure(
    maze: Maze,
    original: Behaviour,
    patched: Behaviour,
    title: str = "",
    labels: tuple[str, str] = ("original", "patched"),
    span: int = 320,
) -> Image.Image:
    """Expected visits per square, original and patched (one log colour scale), and patched - original,
    with each policy's greedy path (orange in its own panel; blue and red in the difference)."""
    cell = _cell_for(maze, span)
    grid = _Grid.of(maze, cell)
    vmax = float(max(original.occupancy.max(), patched.occupancy.max()))
    diff = patched.occupancy - original.occupancy
    limit = float(np.abs(diff).max())

    def occ(v: float) -> tuple[int, int, int] | None:
        return _occupancy_rgb(v, vmax)

    def signed(v: float) -> tuple[int, int, int] | None:
        return diverging(v, limit) if abs(v) >= MIN_VISITS else None

    panels = [
        _occupancy_panel(
            maze, grid, original.occupancy, occ, [original.greedy], behaviour_caption(labels[0], original)
        ),
        _occupancy_panel(maze, grid, patched.occupancy, occ, [patched.greedy], behaviour_caption(labels[1], patched)),
        _occupancy_panel(
            maze,
            grid,
            diff,
            signed,
            [original.greedy, patched.greedy],
            [f"{labels[1]} - {labels[0]}", f"expected visits {-limit:+.1f} (blue) to {limit:+.1f} (red)"],
        ),
    ]
    footer = (
        f"Expected visits per episode ({original.horizon}-step timeout), log colour scale {MIN_VISITS} to {vmax:.1f}; "
        "fainter than that: unvisited.\nLines: greedy paths (argmax action); the square marks the start. "
        "Yellow: cheese · blue box: inner top-right square."
    )
    return tile(title or "Occupancy: expected visits per square", panels, columns=3, footer=footer, min_width=0)
