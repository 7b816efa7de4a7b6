"""A batch's claims as one chart (a forest plot): a row per claim, findings first and then the sanity checks (as
summary.md orders them), each sample's 95% interval of the criterion's statistic with its point estimate, the
criterion's threshold (a dashed line; a shaded band for a `within` claim), the measure's null (no effect), the
verdict as colour and as text, and n per sample.

Why one small x axis per row rather than one shared axis: a batch's claims measure different things on different
scales (a change in a probability, a change in logits of -7, a Spearman rho, a share of an episode, a count of
steps, a difference of 0.003 beside one of 5). On one shared axis the narrow ones would shrink to a dot and
their threshold would sit on top of their interval, unreadable. Each row therefore gets its own range, chosen
so that its intervals, its threshold (or band) and its null are always inside; the axis carries its own ticks,
so a row is never read against another's scale. The rows share what is comparable: where the interval lies
against the threshold, which is what the verdict is made of.

The thresholds are read back from each row's `criterion` text (`steer.analysis.verdicts.criterion_of`, the
inverse of the sentence the engine writes), so the chart draws from any claims.json, the committed snapshots in
docs/claims/ included. The function is pure: rows in, a matplotlib Figure out (steer/report/style.py's look).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.textpath import text_to_path
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from steer.analysis.claim_types import ClaimRow, Criterion
from steer.analysis.claims import two_samples
from steer.analysis.verdicts import SAMPLES, VERDICTS, criterion_of
from steer.report.claims_text import SANITY_TITLE, findings, sanity_checks
from steer.report.style import BAND, BASELINE, INK, RC, VERDICT, styled

# The figure's grid, in inches: a label column (as wide as the longest label), the row's axis, n per sample, the
# verdict.
WIDTH = 8.4
MIN_LABEL_W, GAP, N_W, VERDICT_W = 1.6, 0.1, 0.75, 1.2
LABEL_PT, CRITERION_PT = 7.5, 7.0
ROW_H = {1: 0.5, 2: 0.68}  # a row's height by its number of samples
TICKS_H = 0.2  # below each row's axis: its tick labels
SECTION_H = 0.3
HEAD_H, FOOT_H = 0.95, 0.15
MARKERS = {"discovery": "o", "replication": "s", "": "o"}  # one sample: a dot
LIGHT_TEXT = {"vacuous"}  # verdicts whose badge is pale enough to want dark text


@dataclass(frozen=True)
class Interval:
    """One sample of one claim as the chart draws it: the statistic's value, its 95% interval, n, the verdict."""

    sample: str  # discovery | replication | "" (a batch with one sample)
    point: float | None
    ci: tuple[float, float] | None
    n: str
    verdict: str


@dataclass(frozen=True)
class Columns:
    """Where a row's parts go across the figure, in inches from its left edge."""

    label: float  # the labels' right edge
    axis: float
    axis_w: float
    n: float
    verdict: float


def text_inches(text: str, size: float) -> float:
    """How wide `text` is in steer's font at `size` points (measured from the glyphs, no renderer needed)."""
    width, _, _ = text_to_path.get_text_width_height_descent(
        text, FontProperties(family=RC["font.family"], size=size), ismath=False
    )
    return width / 72


def columns(labels: Sequence[tuple[str, str]]) -> Columns:
    """The label column as wide as the widest (name, criterion) pair; the axis takes what is left."""
    label = 0.1 + max([MIN_LABEL_W, *(max(text_inches(a, LABEL_PT), text_inches(b, CRITERION_PT)) for a, b in labels)])
    verdict = WIDTH - VERDICT_W
    n = verdict - N_W
    axis = label + GAP
    return Columns(label=label, axis=axis, axis_w=n - GAP - axis, n=n, verdict=verdict)


def row_labels(row: Mapping[str, Any]) -> tuple[str, str]:
    """A row's two lines of label: its id, and its criterion in short (and whether it is an extra setting)."""
    short = criterion_label(row, criterion_of(str(row.get("criterion", ""))))
    return str(row.get("id", "")), short + (" · extra setting" if row.get("extra_setting") else "")


def intervals(row: Mapping[str, Any]) -> list[Interval]:
    """Each sample's interval of a claim's row (one for a batch with one sample), in the order drawn."""
    stat = row.get("statistic", "mean")
    sides = [(name, row[name]) for name in SAMPLES if name in row] or [("", row)]
    out = []
    for name, x in sides:
        measured = x.get("measured") or {}
        ci = measured.get(f"{stat}_ci")
        groups = measured.get("n_groups")
        n = "+".join(str(g) for g in groups) if groups else str(measured.get("n", 0))
        out.append(
            Interval(
                sample=name,
                point=measured.get(stat),
                ci=(float(ci[0]), float(ci[1])) if ci is not None else None,
                n=n,
                verdict=str(x.get("verdict", "")),
            )
        )
    return out


def thresholds(criterion: Criterion | None) -> list[float]:
    if criterion is None:
        return []
    if "within" in criterion:
        return [float(v) for v in criterion["within"]]
    return [float(criterion["above"] if "above" in criterion else criterion["below"])]


def x_range(row: Mapping[str, Any], criterion: Criterion | None) -> tuple[float, float]:
    """A range holding every interval and point of the row, its threshold(s) and its null, with a margin."""
    values = [*thresholds(criterion), float(row.get("null", 0.0))]
    for iv in intervals(row):
        values += list(iv.ci or ()) + ([iv.point] if iv.point is not None else [])
    lo, hi = min(values), max(values)
    span = hi - lo or max(abs(hi), 1.0) * 0.1  # one point alone: a range around it
    return lo - 0.08 * span, hi + 0.08 * span


def criterion_label(row: Mapping[str, Any], criterion: Criterion | None) -> str:
    """The criterion in a few characters: 'mean < -0.3', 'median in [0, 1]', 'mean − control > 0.1'."""
    if criterion is None:
        return str(row.get("criterion", ""))
    stat = criterion.get("statistic", "mean")
    if "control" in str(row.get("judged_on", "")):
        stat += " − control"
    if "within" in criterion:
        lo, hi = criterion["within"]
        return f"{stat} in [{lo:g}, {hi:g}]"
    side = "above" if "above" in criterion else "below"
    return f"{stat} {'>' if side == 'above' else '<'} {criterion[side]:g}"  # type: ignore[literal-required]


def _row_axis(ax: Axes, row: Mapping[str, Any], criterion: Criterion | None) -> None:
    """One claim's axis: its threshold or band, its null, each sample's interval and point."""
    cid = str(row.get("id", ""))
    lo, hi = x_range(row, criterion)
    ax.set_xlim(lo, hi)
    ax.set_gid(f"claim-{cid}")
    ivs = intervals(row)
    ys = [0.0] if len(ivs) == 1 else [0.5, -0.5]
    ax.set_ylim(-1.0, 1.0)
    ax.set_yticks([])
    ax.grid(False)  # the only vertical lines are the null and the threshold
    ax.spines["left"].set_visible(False)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.xaxis.set_major_formatter(ScalarFormatter(useOffset=False))
    ax.tick_params(axis="x", labelsize=7, length=2, pad=1)
    if criterion is not None and "within" in criterion:
        a, b = criterion["within"]
        ax.axvspan(a, b, color=BAND, alpha=0.6, lw=0, gid=f"claim-{cid}-band")
    null = float(row.get("null", 0.0))
    ax.axvline(null, color=BASELINE, lw=1.4, gid=f"claim-{cid}-null")
    for k, t in enumerate(thresholds(criterion)):
        ax.axvline(t, color=INK, lw=1.0, ls=(0, (3, 2)), gid=f"claim-{cid}-threshold{k}")
    for iv, y in zip(ivs, ys, strict=True):
        colour = VERDICT.get(iv.verdict, INK)
        tag = f"claim-{cid}-{iv.sample or 'sample'}"
        if iv.ci is not None:
            ax.plot(iv.ci, [y, y], color=colour, lw=2.4, solid_capstyle="butt", gid=tag)
        if iv.point is not None:
            ax.plot(
                [iv.point],
                [y],
                ls="",
                marker=MARKERS[iv.sample],
                ms=5,
                color=colour,
                mec="white",
                mew=0.6,
                gid=f"{tag}-point",
            )
        if iv.ci is None:
            where = iv.point if iv.point is not None else (lo + hi) / 2
            ax.text(where, y, "  no interval", fontsize=7, color=BASELINE, va="center")


def _legend(fig: Figure, rows: Sequence[Mapping[str, Any]], two: bool, top: float) -> None:
    handles: list[Any] = []
    if two:
        handles += [Line2D([], [], ls="", marker=MARKERS[s], color=INK, ms=5, label=f"{s} sample") for s in SAMPLES]
    used = {iv.verdict for r in rows for iv in intervals(r)} | {str(r.get("verdict")) for r in rows}
    handles += [Line2D([], [], color=VERDICT[v], lw=2.4, label=v) for v in VERDICTS if v in used and v in VERDICT]
    handles += [
        Line2D([], [], color=INK, lw=1.0, ls=(0, (3, 2)), label="threshold"),
        Line2D([], [], color=BASELINE, lw=1.4, label="no effect (the null)"),
    ]
    if any("within" in (criterion_of(str(r.get("criterion", ""))) or {}) for r in rows):
        handles.append(Patch(color=BAND, alpha=0.6, label="equivalence band"))
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.1 / WIDTH, top),
        ncol=5,
        fontsize=7.5,
        handlelength=1.8,
        columnspacing=1.2,
        borderaxespad=0,
    )


def claims_chart(rows: Sequence[ClaimRow], title: str = "Claims") -> Figure:
    """The forest plot of a batch's claim rows (claims.json's, or a docs/claims snapshot's): see the module
    docstring. Each row's axis has gid `claim-<id>`; its intervals `claim-<id>-<sample>`, the threshold(s)
    `claim-<id>-threshold<k>`, the null `claim-<id>-null` (ids an SVG keeps, for a reader or a test)."""
    two = two_samples(list(rows))
    groups = [("", findings(rows)), (SANITY_TITLE, sanity_checks(rows))]
    row_h = ROW_H[2 if two else 1]
    cols = columns([row_labels(r) for r in rows])
    height = HEAD_H + FOOT_H + sum(len(g) * row_h + (SECTION_H if name and g else 0) for name, g in groups)
    with styled():
        fig = Figure(figsize=(WIDTH, height))
        top = height - 0.12
        fig.text(0.1 / WIDTH, top / height, title, fontsize=11, fontweight="bold", va="top", color=INK)
        sub = (
            "95% intervals of each claim's statistic"
            + (", on the discovery and the replication sample" if two else "")
            + "; each row has its own x axis (its claim's units)"
        )
        fig.text(0.1 / WIDTH, (top - 0.24) / height, sub, fontsize=7.5, va="top", color=BASELINE)
        _legend(fig, rows, two, (top - 0.45) / height)
        y = height - HEAD_H
        for name, group in groups:
            if not group:
                continue
            if name:
                y -= SECTION_H
                fig.text(0.1 / WIDTH, (y + 0.08) / height, name, fontsize=9, fontweight="bold", color=INK)
            for row in group:
                y -= row_h
                _draw_row(fig, cols, row, y, row_h, height)
    return fig


def _draw_row(fig: Figure, cols: Columns, row: Mapping[str, Any], y: float, row_h: float, height: float) -> None:
    """One claim at `y` (inches from the bottom, the row's lower edge): its label, axis, n and verdict."""
    criterion = criterion_of(str(row.get("criterion", "")))
    axis_h = row_h - TICKS_H - 0.06
    ax = fig.add_axes((cols.axis / WIDTH, (y + TICKS_H) / height, cols.axis_w / WIDTH, axis_h / height))
    _row_axis(ax, row, criterion)
    mid = (y + TICKS_H + axis_h / 2) / height
    name, short = row_labels(row)
    fig.text(cols.label / WIDTH, mid + 0.09 / height, name, fontsize=LABEL_PT, ha="right", va="center", color=INK)
    fig.text(
        cols.label / WIDTH, mid - 0.09 / height, short, fontsize=CRITERION_PT, ha="right", va="center", color=BASELINE
    )
    ivs = intervals(row)
    offsets = [0.0] if len(ivs) == 1 else [0.25, -0.25]
    for iv, dy in zip(ivs, offsets, strict=True):
        fig.text(cols.n / WIDTH, mid + dy * axis_h / height, f"n {iv.n}", fontsize=7, va="center", color=INK)
    verdict = str(row.get("verdict", ""))
    fig.text(
        cols.verdict / WIDTH,
        mid,
        verdict,
        fontsize=7.5,
        fontweight="bold",
        va="center",
        color=INK if verdict in LIGHT_TEXT else "white",
        bbox={"boxstyle": "round,pad=0.25", "fc": VERDICT.get(verdict, INK), "ec": "none"},
    )


__all__ = [
    "Columns",
    "Interval",
    "claims_chart",
    "columns",
    "criterion_label",
    "intervals",
    "row_labels",
    "text_inches",
    "thresholds",
    "x_range",
]
