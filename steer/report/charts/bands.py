"""Metrics against a shared x (coefficients, distance bins): a median line over its 25-75% band, small multiples.

`band_charts` draws one panel per `BandSeries` in rows of `columns`; `draw_band` draws one series on an Axes a
notebook already has. The x positions are evenly spaced and labelled (a coefficient sweep's values are rarely
evenly spaced; the footer says so where they are not). A value of None leaves a gap in the line and the band:
the metric is undefined there (e.g. P(cheese | DS) on mazes without a decision square).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from steer.report.style import BAND, LINE, MUTED, PANEL_IN, dashed, heading, new_figure, panel_title, styled, wrap


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


def _array(values: Sequence[float | None]) -> np.ndarray:
    """None as NaN: matplotlib breaks a line and a filled band there."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


@styled()
def draw_band(
    ax: Axes,
    series: BandSeries,
    xlabels: Sequence[str],
    xtitle: str = "coefficient",
    y_range: tuple[float, float] | None = None,
    width_in: float = PANEL_IN[0],
) -> None:
    """One series on `ax`, a panel `width_in` inches wide: the band (label `_band`), the median line with a dot
    per x (`_median`), the baseline dashed (`_reference`), and its title with what line and band show and the
    largest n."""
    x = np.arange(len(xlabels), dtype=float)
    mid, low, high = _array(series.median), _array(series.q25), _array(series.q75)
    n_max = max(series.n, default=0)
    # The plot is the panel less its y tick labels and margins: about 0.8 inch.
    panel_title(ax, series.title, f"{series.band} over mazes (n ≤ {n_max})", width_in - 0.3)
    ax.set_xticks(x, list(xlabels), fontsize=7 if len(xlabels) > 10 else 8)
    ax.set_xlim(-0.5, len(xlabels) - 0.5)
    ax.set_xlabel(wrap(xtitle, width_in - 0.6, 9), color=MUTED)  # on two lines rather than into the next panel
    ax.grid(axis="x", visible=False)
    if np.isnan(np.concatenate([mid, low, high])).all():
        ax.text(0.5, 0.5, "undefined in every maze", transform=ax.transAxes, ha="center", va="center", color=MUTED)
        ax.set_yticks([])
        return
    defined = ~(np.isnan(low) | np.isnan(high))
    ax.fill_between(x, low, high, where=defined, color=BAND, linewidth=0, label="_band", zorder=1)
    # A band defined at one x alone has no width to fill: a short thick bar shows it.
    alone = [
        i for i in np.flatnonzero(defined) if not (i > 0 and defined[i - 1]) and not (i + 1 < len(x) and defined[i + 1])
    ]
    if alone:
        ax.vlines(x[alone], low[alone], high[alone], color=BAND, linewidth=7, label="_band", zorder=1)
    if series.baseline is not None:
        dashed(ax, y=series.baseline)
    ax.plot(x, mid, color=LINE, marker="o", markersize=4, label="_median", zorder=3)
    if y_range is not None:
        ax.set_ylim(*y_range)


@styled()
def band_charts(
    title: str,
    xlabels: Sequence[str],
    series: Sequence[BandSeries],
    footer: str = "",
    columns: int = 3,
    xtitle: str = "coefficient",
    y_range: tuple[float, float] | None = None,
) -> Figure:
    """Small multiples of several metrics against the same x positions, in rows of `columns`; each panel is
    wider where many x labels must fit. `y_range` gives every panel one y axis (e.g. 0 to 1 for probabilities),
    so that they compare by eye."""
    cols = max(1, min(columns, len(series)))
    rows = -(-len(series) // cols)
    # One panel alone is widened: the figure's title and footer need the room.
    panel_w = max(PANEL_IN[0], 0.24 * len(xlabels) + 0.9, 4.8 / cols)
    fig = new_figure(panel_w * cols, PANEL_IN[1] * rows + 0.9 + 0.15 * footer.count("\n"))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, s in zip(axes.flat, series, strict=False):
        draw_band(ax, s, xlabels, xtitle, y_range, panel_w)
    for ax in axes.flat[len(series) :]:
        ax.set_visible(False)
    heading(fig, title, footer)
    return fig


__all__ = ["BandSeries", "band_charts", "draw_band"]
