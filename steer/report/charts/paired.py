"""Several vectors' effects on the same targets: one column per target maze, a dot per vector, joined.

`paired_chart` shows an averaged vector (or a fixed source's) beside each target's own vector and, where given,
the mean of the other single sources: the pairing per target is the point (steer.analysis.comparison tests
the paired differences), so each column's dots are joined by a thin line. A dashed line marks 0, no effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from steer.report.style import (
    BASELINE,
    GRID,
    HIGHLIGHT,
    LINE,
    MUTED,
    WIDTH_IN,
    dashed,
    heading,
    legend_above,
    new_figure,
    styled,
)

# Series colours: the averaged (or fixed) vector, each target's own vector, the other single mazes.
COLOURS = {"mean": HIGHLIGHT, "vector": HIGHLIGHT, "own": LINE, "other": BASELINE}


@styled()
def paired_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    names: Mapping[str, str],
    ylabel: str,
    footer: str = "",
    marked: Sequence[bool] = (),
    marked_note: str = "",
) -> Figure:
    """One column per target where any series is defined, a dot per series (label: its name in `names`),
    each column's dots joined (label `_pair`). `marked` targets (in sample) get an asterisk after their
    label, and the footer `marked_note` where any is drawn."""
    keep = [i for i in range(len(labels)) if any(series[k][i] is not None for k in series)]
    if any(marked[i] for i in keep) and marked_note:  # the asterisk is explained only where one is drawn
        footer = f"{footer}\n* {marked_note}" if footer else f"* {marked_note}"
    fig = new_figure(max(WIDTH_IN, 1.2 + 0.2 * len(keep)), 3.6 + 0.16 * (footer.count("\n") + 1))
    ax = fig.subplots()
    ax.set_ylabel(ylabel, color=MUTED)
    ax.set_xlabel("target seed", color=MUTED)
    if not keep:
        ax.text(0.5, 0.5, "undefined for every target", transform=ax.transAxes, ha="center", color=MUTED)
        heading(fig, title, footer)
        return fig
    x = np.arange(len(keep), dtype=float)
    keys = list(series)
    # Each series a little apart within its column, so equal values (all at 0) stay visible side by side.
    offsets = {k: 0.22 * (n - (len(keys) - 1) / 2) for n, k in enumerate(keys)}
    values = {k: np.array([np.nan if series[k][i] is None else series[k][i] for i in keep], float) for k in keys}
    for c in range(len(keep)):
        xs = [x[c] + offsets[k] for k in keys if not np.isnan(values[k][c])]
        ys = [values[k][c] for k in keys if not np.isnan(values[k][c])]
        ax.plot(xs, ys, color=GRID, linewidth=1.5, zorder=1.5, label="_pair")
    for k in keys:
        ax.plot(x + offsets[k], values[k], "o", color=COLOURS.get(k, MUTED), markersize=5, label=names[k], zorder=3)
    dashed(ax, y=0.0)
    ticks = [labels[i] + ("*" if marked and marked[i] else "") for i in keep]
    ax.set_xticks(x, ticks, fontsize=7 if len(keep) > 24 else 8, rotation=90 if len(keep) > 24 else 0)
    ax.set_xlim(-0.6, len(keep) - 0.4)
    ax.grid(axis="x", visible=False)
    legend_above(ax, [names[k] for k in keys])
    heading(fig, title, footer)
    return fig


__all__ = ["COLOURS", "paired_chart"]
