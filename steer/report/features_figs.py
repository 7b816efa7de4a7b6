"""`steer features`' figure: the sparsity trade-off, each fitted dictionary's mean L0 against its variance
explained and against its mean |change in P(reach the cheese)| on the held-out mazes, the issue's targets dashed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from matplotlib.figure import Figure

from steer.report.style import ALARM, BAND, LINE, PANEL_IN, dashed, heading, new_figure, panel_title, styled


def _interval(d: Mapping[str, Any]) -> tuple[float, float] | None:
    ci = d.get("mean_ci")
    return (float(ci[0]), float(ci[1])) if ci else None


def tradeoff_chart(quality: Mapping[str, Mapping[str, Any]], targets: Mapping[str, float], mazes: int) -> Figure:
    """Two panels over the dictionaries in `quality` (k -> `dictionary_summary`), x = mean L0 on held-out rows."""
    ks = sorted(quality, key=int)
    l0 = [float(quality[k]["mean_l0"]) for k in ks]
    fig = new_figure(2 * PANEL_IN[0] + 0.4, PANEL_IN[1] + 1.4)
    left, right = fig.subplots(1, 2)
    with styled():
        ve = [quality[k]["variance_explained"] for k in ks]
        left.plot(l0, ve, "-o", color=LINE, markersize=5, zorder=3, clip_on=False, label="pooled over positions")
        per_maze = [quality[k]["variance_explained_per_maze"] for k in ks]
        for i, (x, d) in enumerate(zip(l0, per_maze, strict=True)):
            ci = _interval(d)
            if ci:
                left.vlines(x, *ci, color=BAND, linewidth=5, zorder=2)
            left.plot([x], [d["mean"]], "o", mfc="white", color=LINE, markersize=5, zorder=3,
                      label="per-maze mean, 95% interval" if i == 0 else None)  # fmt: skip
        dashed(left, y=targets["variance_explained"], colour=ALARM)
        panel_title(left, "Variance explained", "filled: pooled over held-out positions; open: mean of the mazes' own")
        left.legend(loc="lower right", fontsize=7.5)
        left.set_ylabel("fraction of variance")
        abs_delta = [quality[k]["abs_delta_p_cheese"] for k in ks]
        right.plot(l0, [d["mean"] for d in abs_delta], "-o", color=LINE, markersize=5, zorder=3, clip_on=False)
        for x, d in zip(l0, abs_delta, strict=True):
            ci = _interval(d)
            if ci:
                right.vlines(x, *ci, color=BAND, linewidth=5, zorder=2)
        dashed(right, y=targets["mean_abs_delta_p_cheese"], colour=ALARM)
        panel_title(right, "Behaviour kept", "mean |change in exact P(reach the cheese)|, 95% interval over mazes")
        right.set_ylabel("|change in P(reach cheese)|")
        right.set_ylim(bottom=0)
        left.set_ylim(top=1.0)  # the whole way to a perfect reconstruction, so the gap to the target reads true
        for ax, ys in ((left, ve), (right, [d["mean"] for d in abs_delta])):
            dashed(ax, x=targets["mean_l0"], colour=ALARM)
            ax.margins(x=0.12)  # the k labels beside the outer points stay inside the panel
            ax.set_xlabel("mean L0 (features active per position)")
            for i, (x, y, k) in enumerate(zip(l0, ys, ks, strict=True)):
                first = i == 0  # the leftmost label to the right of its point, the others to the left: none clipped
                ax.annotate(f"k={k}", (x, y), xytext=(6 if first else -6, 6), textcoords="offset points",
                            fontsize=7.5, ha="left" if first else "right",
                            bbox={"boxstyle": "square,pad=0.1", "fc": "white", "ec": "none"})  # fmt: skip
    heading(
        fig,
        "Sparsity trade-off of the per-position dictionaries",
        f"{mazes} held-out mazes. Red dashes: the targets (variance explained ≥ {targets['variance_explained']:g}, "
        f"mean |change| ≤ {targets['mean_abs_delta_p_cheese']:g}, mean L0 ≤ {targets['mean_l0']:g}).",
    )
    return fig
