"""One row per label (layers, sites, features, distance bins), top to bottom: bars, or markers with intervals.

`bar_rows` draws one horizontal bar per label with its value written at its end (legible with 40 rows or
more), a dashed line at a reference (the unpatched policy, the best shuffled probe, 0) and one label singled
out. `interval_rows` draws per row one marker and its interval for each of several series, offset within the
row so that overlapping intervals stay apart, with a legend above. None is written "n/a" (bars) or left out
(intervals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from steer.report.style import (
    HIGHLIGHT,
    INK,
    LINE,
    MUTED,
    WIDTH_IN,
    dashed,
    heading,
    legend_above,
    new_figure,
    styled,
)


def _height(rows: int, row_in: float, footer: str) -> float:
    return 1.2 + row_in * rows + 0.16 * (footer.count("\n") + 1)


def _width(labels: Sequence[str]) -> float:
    return max(WIDTH_IN, 0.068 * max((len(label) for label in labels), default=4) + 5.0)


@styled()
def bar_rows(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    reference: float | None = None,
    footer: str = "",
    value_range: tuple[float, float] = (0.0, 1.0),
    highlight: str | None = None,
    xlabel: str = "",
) -> Figure:
    """One horizontal bar per label from the range's low end (or 0 where the range spans it); `highlight`
    names the label drawn in the highlight colour; a dashed line marks `reference`."""
    lo, hi = value_range
    base = 0.0 if lo <= 0.0 <= hi else lo
    fig = new_figure(_width(labels), _height(len(labels), 0.2, footer))
    ax = fig.subplots()
    y = np.arange(len(labels))
    widths = [np.nan if v is None else v - base for v in values]
    colours = [HIGHLIGHT if label == highlight else LINE for label in labels]
    ax.barh(y, widths, left=base, height=0.7, color=colours, label="_bars", zorder=2)
    for i, v in enumerate(values):
        text, at = ("n/a", base) if v is None else (f"{v:.2f}", v)
        # On a white ground: a value near the reference stays legible over its dashed line.
        ax.annotate(text, (at, i), xytext=(3 if (v or 0) >= base else -3, 0), textcoords="offset points",
                    ha="left" if (v or 0) >= base else "right", va="center", fontsize=7.5,
                    color=MUTED if v is None else INK, zorder=4,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6, "alpha": 0.85})  # fmt: skip
    ax.set_yticks(y, list(labels))
    for tick, label in zip(ax.get_yticklabels(), labels, strict=True):
        if label == highlight:
            tick.set_color(HIGHLIGHT)
            tick.set_fontweight("bold")
    ax.set_ylim(len(labels) - 0.5, -0.5)  # the first label at the top
    ax.set_xlim(lo, hi + 0.08 * (hi - lo))  # room for the value written after the longest bar
    ax.grid(axis="y", visible=False)
    if base != lo:
        ax.axvline(base, color=INK, linewidth=0.8, zorder=2.5)
    if reference is not None:
        dashed(ax, x=reference, colour=MUTED)
    if xlabel:
        ax.set_xlabel(xlabel, color=MUTED)
    heading(fig, title, footer)
    return fig


@dataclass(frozen=True)
class IntervalSeries:
    """One marker per row with a horizontal interval line; None where undefined."""

    title: str
    colour: str  # a matplotlib colour, e.g. one of style.SERIES
    value: Sequence[float | None]
    low: Sequence[float | None]
    high: Sequence[float | None]


@styled()
def interval_rows(
    title: str,
    labels: Sequence[str],
    series: Sequence[IntervalSeries],
    value_range: tuple[float, float],
    footer: str = "",
    xlabel: str = "",
) -> Figure:
    """Rows of labels, the first at the top, each with one marker (label = the series' title) and interval
    (label `_interval: <title>`) per series; a legend above names the series."""
    k = len(series)
    fig = new_figure(_width(labels), _height(len(labels), 0.12 + 0.06 * k, footer) + 0.17 * k)
    ax = fig.subplots()
    y = np.arange(len(labels), dtype=float)
    for i in range(1, len(labels), 2):  # every other row shaded, so a row's markers are read together
        ax.axhspan(i - 0.5, i + 0.5, color="#f4f4f4", linewidth=0, zorder=0)
    for m, s in enumerate(series):
        # Series spread over the middle 60% of the row, the first highest.
        offset = 0.0 if k == 1 else -0.3 + 0.6 * m / (k - 1)
        rows = [i for i in range(len(labels)) if s.low[i] is not None and s.high[i] is not None]
        ax.hlines(y[rows] + offset, [s.low[i] for i in rows], [s.high[i] for i in rows], color=s.colour,
                  linewidth=2, label=f"_interval: {s.title}", zorder=2)  # fmt: skip
        values = np.array([np.nan if v is None else v for v in s.value], dtype=float)
        ax.plot(values, y + offset, "o", color=s.colour, markersize=5, label=s.title, zorder=3)
    ax.set_yticks(y, list(labels))
    ax.set_ylim(len(labels) - 0.5, -0.5)
    lo, hi = value_range
    ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))  # a marker at an end of the range stays whole
    ax.grid(axis="y", visible=False)
    ax.tick_params(axis="y", length=0)
    if xlabel:
        ax.set_xlabel(xlabel, color=MUTED)
    legend_above(ax, [s.title for s in series])
    heading(fig, title, footer)
    return fig


__all__ = ["IntervalSeries", "bar_rows", "interval_rows"]
