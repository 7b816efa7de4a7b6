"""The vector twin of a maze figure: the same panels as steer/report/render.py's PNG (the schematic cropped as it
crops it, walls, opened path squares, cheese, the start mark, the decision-square and top-right boxes, the arrows
with the same scale and colours, diff panels, captions, title, footer and legend) drawn with matplotlib, so that a
spec's `figures: [png, svg, pdf]` also gets each field figure as SVG and PDF for a paper.

The PNG stays Pillow's (byte for byte what it was: resumed runs and the golden tests compare it); the twin is
drawn from the same geometry (`PanelFrame`, `arrow_shapes`, `tile_layout`), in the PNG's own pixel coordinates:
the figure is the PNG's size at steer's DPI, each panel one Axes whose data units are the PNG's pixels, so a
shape lies where the PNG has it. Only the font differs: Pillow's default (Aileron) is not a file matplotlib can
name, so the twin writes DejaVu Sans (steer's charts' font), scaled to take the same width.

Each panel's Axes has gid `panel-<k>`; its arrows are one LineCollection (`panel-<k>-arrows`, one segment per
square with an arrow, from the square's centre to the tip), their heads one PolyCollection (`panel-<k>-heads`),
and the squares whose arrow is shorter than a pixel dots (`panel-<k>-dots`): an SVG keeps the ids.

matplotlib is imported when a twin is drawn, not with this module: a run that writes PNGs only never loads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from steer.io import atomic_write_bytes
from steer.maze.layout import Maze
from steer.report.figures import DPI, figure_bytes, save_figure
from steer.report.render import (
    CHEESE_EDGE_RGB,
    CHEESE_RGB,
    CORNER_RGB,
    DS_RGB,
    FOOTER_RGB,
    START_RGB,
    TEXT_RGB,
    TICK_RGB,
    FieldFigure,
    Panel,
    PanelFrame,
    arrow_shapes,
    cell_size,
    opened_squares,
    outline_widths,
    panel_frame,
    shaft_width,
    square_rgb,
    start_mark,
    tile_layout,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PT = 72 / DPI  # points per pixel of the PNG
FONT_SCALE = 0.87  # DejaVu Sans is about 15% wider than Pillow's default font at one size: the same widths


def rgb(c: tuple[int, int, int]) -> tuple[float, float, float]:
    return (c[0] / 255, c[1] / 255, c[2] / 255)


def font_pt(px: float) -> float:
    """The twin's font size in points for a Pillow font of `px` pixels."""
    return px * FONT_SCALE * PT


def text_px(text: str, px: int) -> float:
    """The width in PNG pixels of `text` in the twin's font (for the layout: a title never overflows)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(family="DejaVu Sans", size=px * FONT_SCALE)
    return float(text_to_path.get_text_width_height_descent(text, prop, ismath=False)[0])


def field_twin(fig: FieldFigure) -> Figure:
    """The matplotlib figure of `fig`: see the module docstring."""
    from matplotlib.figure import Figure

    from steer.report.style import styled

    ref = fig.base or fig.panels[0].maze
    frame = panel_frame(ref, cell_size(ref))
    layout = tile_layout(fig.title, [frame.size] * len(fig.panels), fig.columns, fig.footer, measure=text_px)
    width, height = layout.width, layout.height
    with styled():
        out = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
        out.text(
            layout.pad / width,
            1 - layout.pad / height,
            fig.title,
            fontsize=font_pt(layout.title_size),
            color=rgb(TEXT_RGB),
            va="top",
            ha="left",
        )
        pw, ph = frame.size
        for k, (panel, (x, y)) in enumerate(zip(fig.panels, layout.origins, strict=True)):
            ax = out.add_axes((x / width, 1 - (y + ph) / height, pw / width, ph / height), gid=f"panel-{k}")
            _panel(ax, panel, frame, ref, f"panel-{k}")
        for line, y in zip(fig.footer.split("\n") if fig.footer else [], layout.footer_ys, strict=True):
            out.text(
                layout.pad / width,
                1 - y / height,
                line,
                fontsize=font_pt(layout.footer_size),
                color=rgb(FOOTER_RGB),
                va="top",
                ha="left",
            )
    return out


def _square(box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """A Pillow rectangle's pixels as an area: its corners are pixel centres, inclusive, so half a pixel out."""
    x0, y0, x1, y1 = box
    return [(x0 - 0.5, y0 - 0.5), (x1 + 0.5, y0 - 0.5), (x1 + 0.5, y1 + 0.5), (x0 - 0.5, y1 + 0.5)]


def _outline(ax: Axes, box: tuple[float, float, float, float], width: int, colour: tuple[int, int, int]) -> None:
    """A Pillow outline of `width` pixels, drawn inward from the box's edge: a stroke centred half a width in."""
    from matplotlib.patches import Rectangle

    x0, y0, x1, y1 = box
    inset = width / 2 - 0.5
    ax.add_patch(
        Rectangle(
            (x0 + inset, y0 + inset),
            x1 - x0 - 2 * inset,
            y1 - y0 - 2 * inset,
            fill=False,
            edgecolor=rgb(colour),
            linewidth=width * PT,
            joinstyle="miter",
        )
    )


def _panel(ax: Axes, panel: Panel, frame: PanelFrame, ref: Maze, gid: str) -> None:
    """One maze panel, layer by layer as render.draw_panel draws it, in its pixels (pixel centres at integers)."""
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.patches import Circle, Polygon

    pw, ph = frame.size
    ax.set_xlim(-0.5, pw - 0.5)
    ax.set_ylim(ph - 0.5, -0.5)
    ax.set_axis_off()
    maze, cell = panel.maze, frame.cell
    tick = font_pt(10)
    for row in range(frame.r0, frame.r1 + 1):
        ax.text(*frame.row_tick(row), str(row), fontsize=tick, color=rgb(TICK_RGB), ha="right", va="center")
    for col in range(frame.c0, frame.c1 + 1):
        ax.text(*frame.col_tick(col), str(col), fontsize=tick, color=rgb(TICK_RGB), ha="center", va="top")
    opened = opened_squares(maze, ref)
    squares = frame.squares()
    colours = [rgb(square_rgb(maze, sq, opened)) for sq in squares]
    ax.add_collection(
        PolyCollection(
            [_square(frame.box(sq)) for sq in squares], facecolors=colours, edgecolors="none", gid=f"{gid}-maze"
        )
    )
    corner_w, ds_w = outline_widths(cell)
    _outline(ax, frame.box(maze.top_right_square, 1), corner_w, CORNER_RGB)
    ds = maze.decision_square()
    if ds is not None:
        _outline(ax, frame.box(ds, 1), ds_w, DS_RGB)
    if maze.cheese is not None:
        x0, y0, x1, y1 = frame.box(maze.cheese, cell * 0.2)
        ax.add_patch(
            Circle(
                ((x0 + x1) / 2, (y0 + y1) / 2),
                (x1 - x0 + 1) / 2 - 1,  # the outline, 2 pixels wide, inside the ellipse's box
                facecolor=rgb(CHEESE_RGB),
                edgecolor=rgb(CHEESE_EDGE_RGB),
                linewidth=2 * PT,
            )
        )
    ax.add_patch(Polygon(start_mark(frame, maze), closed=True, facecolor=rgb(START_RGB), edgecolor="none"))
    shapes = arrow_shapes(panel, frame)
    colour = rgb(panel.color)
    shafts = [[s.centre, s.tip] for s in shapes if s.tip is not None]
    heads = [[s.tip, s.left, s.right] for s in shapes if s.tip is not None]
    dots = [s.centre for s in shapes if s.tip is None]
    ax.add_collection(
        LineCollection(shafts, colors=[colour], linewidths=shaft_width(cell) * PT, capstyle="butt", gid=f"{gid}-arrows")
    )
    ax.add_collection(PolyCollection(heads, facecolors=[colour], edgecolors="none", gid=f"{gid}-heads"))
    if dots:
        ax.scatter(
            [d[0] for d in dots], [d[1] for d in dots], s=(4 * PT) ** 2, color=colour, linewidths=0, gid=f"{gid}-dots"
        )
    for i, line in enumerate(panel.caption.split("\n")[:2]):
        x, y = frame.caption_at(i)
        ax.text(x, y, line, fontsize=font_pt(frame.caption_size), color=rgb(TEXT_RGB), ha="left", va="top")


def save_field(fig: FieldFigure, path: Path, formats: Sequence[str] = ("png",)) -> list[str]:
    """Write `fig` at `path` (a .png name) as Pillow's PNG and, for each other format of `formats` (svg, pdf),
    its matplotlib twin beside it; returns the names written, the PNG first. With PNG alone, exactly what
    `save_figure(fig.image(), path)` writes."""
    path = Path(path)
    written = save_figure(fig.image(), path)
    others = [f for f in formats if f != "png"]
    if others:
        twin = field_twin(fig)
        for fmt in others:
            target = path.with_suffix(f".{fmt}")
            atomic_write_bytes(target, figure_bytes(twin, fmt))
            written.append(target.name)
    return written


__all__ = ["FONT_SCALE", "PT", "field_twin", "save_field", "text_px"]
