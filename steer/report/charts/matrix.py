"""Matrices as coloured cells with their values written in: signed effects and probabilities.

`heatmap` colours signed values on the diverging scale with limits symmetric about 0 (the largest |value|), so
white always means no effect and equal shades mean equal sizes on both sides (transfer, dose asymmetry,
compose-map). `probability_map` colours values in [0, 1] from white to blue and writes each cell's n. A None
cell is grey and says n/a. Both write every value in its cell: a reader copies numbers from the figure, not
shades.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from steer.report.style import (
    DIVERGING,
    INK,
    MUTED,
    NA,
    SEQUENTIAL,
    WIDTH_IN,
    colour_bar,
    heading,
    new_figure,
    styled,
)

Cells = Sequence[Sequence[float | None]]


def masked(values: Cells) -> np.ma.MaskedArray:
    """A matrix with None masked (drawn in the colour map's 'bad' colour)."""
    data = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float)
    return np.ma.masked_invalid(data.reshape(len(values), -1))


def symmetric_limit(values: Cells) -> float:
    """The largest |value| (1 where there is none, or all are 0): the diverging scale runs from -it to +it."""
    present = [abs(v) for row in values for v in row if v is not None]
    return max(present, default=0.0) or 1.0


def _label_width(labels: Sequence[str]) -> float:
    """Inches a column of tick labels takes at 8 points (about 0.068 inch a character)."""
    return 0.068 * max((len(label) for label in labels), default=4) + 0.2


@styled()
def draw_cells(
    ax: Axes,
    values: Cells,
    cmap: Colormap,
    norm: Normalize,
    text: Callable[[int, int, float | None], str],
    light: Callable[[float], bool],
) -> AxesImage:
    """The matrix on `ax` as an image (row 0 at the top), `text(i, j, value)` written in each cell, in white
    where `light(value)` says the cell is dark."""
    image = ax.imshow(masked(values), cmap=cmap.with_extremes(bad=NA), norm=norm, aspect="auto")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    # Thin white lines between cells, as the grid a reader's eye follows along a row.
    rows, cols = image.get_array().shape
    ax.set_xticks(np.arange(cols + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ink = "white" if v is not None and light(v) else (MUTED if v is None else INK)
            ax.text(j, i, text(i, j, v), ha="center", va="center", color=ink, fontsize=7.5, linespacing=1.3)
    return image


def _matrix_figure(
    row_labels: Sequence[str], col_labels: Sequence[str], cell: tuple[float, float], extra: float
) -> tuple[Figure, Axes]:
    width = max(WIDTH_IN, _label_width(row_labels) + cell[0] * len(col_labels) + 1.4)
    fig = new_figure(width, 1.4 + cell[1] * len(row_labels) + extra)
    ax = fig.subplots()
    ax.set_yticks(range(len(row_labels)), list(row_labels))
    ax.set_xticks(range(len(col_labels)), list(col_labels))
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    return fig, ax


@styled()
def heatmap(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Cells,
    notes: Sequence[Sequence[str]] | None = None,
    axis_titles: tuple[str, str] = ("rows", "columns"),
    footer: str = "",
    divider_before: int | None = None,
    scale_label: str = "",
) -> Figure:
    """Signed values as cells on the diverging scale, symmetric about 0, each with its value (3 decimals, signed)
    and an optional note below it. `divider_before`: a row index; a line sets the rows from there on apart (a
    summary row, e.g. the averaged vector below the single sources)."""
    limit = symmetric_limit(values)
    fig, ax = _matrix_figure(row_labels, col_labels, (0.95, 0.48), 0.16 * (footer.count("\n") + 1))

    def text(i: int, j: int, v: float | None) -> str:
        note = notes[i][j] if notes else ""
        head = "n/a" if v is None else f"{v:+.3f}"
        return f"{head}\n{note}" if note else head

    image = draw_cells(ax, values, DIVERGING, Normalize(-limit, limit), text, lambda v: abs(v) / limit > 0.6)
    if divider_before is not None:
        ax.axhline(divider_before - 0.5, color=INK, linewidth=2.5)
    ax.set_ylabel(axis_titles[0], color=MUTED)
    ax.set_xlabel(axis_titles[1], color=MUTED, labelpad=6)
    colour_bar(fig, image, ax, scale_label)
    heading(fig, title, footer)
    return fig


@styled()
def probability_map(
    title: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    values: Cells,
    counts: Sequence[Sequence[int]],
    axis_titles: tuple[str, str],
    footer: str = "",
    scale_label: str = "P",
) -> Figure:
    """Probabilities as cells from white (0) to blue (1), each with its value and its n; grey where empty."""
    fig, ax = _matrix_figure(row_labels, col_labels, (0.55, 0.42), 0.16 * (footer.count("\n") + 1))

    def text(i: int, j: int, v: float | None) -> str:
        return "" if v is None else f"{v:.2f}\nn {counts[i][j]}"

    image = draw_cells(ax, values, SEQUENTIAL, Normalize(0.0, 1.0), text, lambda v: v > 0.55)
    ax.set_ylabel(axis_titles[0], color=MUTED)
    ax.set_xlabel(axis_titles[1], color=MUTED, labelpad=6)
    colour_bar(fig, image, ax, scale_label)
    heading(fig, title, footer)
    return fig


__all__ = ["draw_cells", "heatmap", "masked", "probability_map", "symmetric_limit"]
