"""`steer steerability`'s figures: a few mazes' curves (log-odds and probability against the coefficient, one line
per site, crumbled coefficients crossed), the steerability distribution per site, and steerability against the best
predictor per site. Each chart is a function of typed series to a Figure; `figures` builds them from a report body
(metrics.json), so a notebook can redraw them from a run folder."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from steer.report.style import (
    ALARM,
    BAND,
    LINE,
    MUTED,
    PANEL_IN,
    SERIES,
    WIDTH_IN,
    dashed,
    heading,
    new_figure,
    panel_title,
    styled,
)


@dataclass(frozen=True)
class SiteCurve:
    """One maze's curve at one site: the target and its log-odds per coefficient, and which coefficients crumble."""

    site: str
    p: Sequence[float | None]
    log_odds: Sequence[float] | None
    crumbled: Sequence[bool]


@dataclass(frozen=True)
class MazeCurves:
    seed: int
    subtitle: str  # e.g. the class and steerability at each site
    sites: Sequence[SiteCurve]


@dataclass(frozen=True)
class SiteValues:
    """Per maze values at one site (steerability; against a predictor, its values too)."""

    site: str
    y: Sequence[float]
    x: Sequence[float] = ()
    note: str = ""  # a subtitle: the median and its interval, or rho and its interval


def _line(ax: Any, coeffs: np.ndarray, y: np.ndarray, crumbled: np.ndarray, colour: str, label: str) -> None:
    ax.plot(coeffs, y, color=colour, marker="o", markersize=2.5, linewidth=1.4, label=label, zorder=3)
    if crumbled.any():
        ax.plot(coeffs[crumbled], y[crumbled], linestyle="none", marker="x", markersize=5, color=ALARM,
                label="_crumbled", zorder=4)  # fmt: skip


@styled()
def curves_chart(title: str, coeffs: Sequence[float], mazes: Sequence[MazeCurves], target: str) -> Figure:
    """Two rows of panels, one column per maze: the target's log-odds (top) and probability (bottom) against the
    coefficient, one line per site; an x marks a coefficient that crumbles the policy."""
    cols = max(1, len(mazes))
    fig = new_figure(max(WIDTH_IN, 2.4 * cols), 5.9)
    # A thin first row holds the legend: above the panels, clear of the title and of the footer.
    rows = fig.subplots(3, cols, squeeze=False, height_ratios=[0.06, 1, 1])
    for ax in rows[0]:
        ax.set_axis_off()
    axes = rows[1:]
    c = np.asarray(coeffs, dtype=float)
    for j, maze in enumerate(mazes):
        top, bottom = axes[0][j], axes[1][j]
        panel_title(top, f"seed {maze.seed}", maze.subtitle, 2.4)
        for k, site in enumerate(maze.sites):
            colour = SERIES[k % len(SERIES)]
            crumbled = np.asarray(site.crumbled, dtype=bool)
            p = np.array([np.nan if v is None else v for v in site.p], dtype=float)
            if site.log_odds is not None:
                _line(top, c, np.asarray(site.log_odds, dtype=float), crumbled, colour, site.site)
            _line(bottom, c, p, crumbled, colour, site.site)
        for ax in (top, bottom):
            dashed(ax, x=0.0)
        bottom.set_ylim(-0.03, 1.03)
        bottom.set_xlabel("coefficient", color=MUTED)
        top.sharex(bottom)
    axes[0][0].set_ylabel(f"log-odds of {target}", color=MUTED)
    axes[1][0].set_ylabel(target, color=MUTED)
    if mazes and mazes[0].sites:
        handles, labels = axes[0][0].get_legend_handles_labels()
        legend = rows[0][0].legend(handles, labels, loc="center left", ncols=min(4, len(labels)), frameon=False,
                                   borderaxespad=0)  # fmt: skip
        legend.set_in_layout(False)  # it runs across the empty row; the first column keeps its width
    footer = (
        "subtitles: each site's class and steerability s, in the legend's order · x: a coefficient that crumbles the "
        "policy (mean P(move into a wall) or entropy rise past `crumble`) · dashed: c = 0, the policy left alone · "
        "log-odds clipped at p = 1e-4 and 1 - 1e-4"
    )
    heading(fig, title, footer)
    return fig


@styled()
def distribution_chart(title: str, sites: Sequence[SiteValues], xlabel: str) -> Figure:
    """One row per site: every maze's steerability as a dot (jittered up and down), the quartiles as a band and the
    median as a bar; 0 dashed."""
    fig = new_figure(WIDTH_IN, 1.4 + 0.8 * max(1, len(sites)))
    ax = fig.subplots()
    rng = np.random.default_rng(0)  # fixed jitter: the same figure from the same numbers
    for i, s in enumerate(sites):
        y = np.asarray(s.y, dtype=float)
        if not len(y):
            continue
        q25, mid, q75 = np.percentile(y, [25, 50, 75])
        ax.fill_betweenx([i - 0.2, i + 0.2], q25, q75, color=BAND, linewidth=0, zorder=1)
        ax.plot([mid, mid], [i - 0.2, i + 0.2], color=LINE, linewidth=2.5, zorder=3)
        ax.scatter(y, i + rng.uniform(-0.17, 0.17, len(y)), s=7, color=MUTED, alpha=0.6, linewidths=0, zorder=2)
        # Above its row (the y axis runs down): the median with its interval, n, the anti-steerable share.
        ax.annotate(s.note, (0.01, i - 0.27), xycoords=("axes fraction", "data"), fontsize=7.5, color=MUTED,
                    va="bottom")  # fmt: skip
    ax.set_yticks(range(len(sites)), [s.site for s in sites])
    ax.set_ylim(len(sites) - 0.6, -0.75)
    ax.set_xlabel(xlabel, color=MUTED)
    ax.grid(axis="y", visible=False)
    dashed(ax, x=0.0)
    heading(fig, title, "dots: mazes · band: 25-75% · bar: median · dashed: 0, no steering · positive: the claimed way")
    return fig


@styled()
def predictor_chart(title: str, sites: Sequence[SiteValues], xlabel: str, ylabel: str, about: str = "") -> Figure:
    """One panel per site: steerability against a predictor, a dot per maze, its rank correlation in the subtitle."""
    cols = max(1, len(sites))
    fig = new_figure(max(WIDTH_IN, PANEL_IN[0] * cols), 3.4)
    axes = fig.subplots(1, cols, squeeze=False)[0]
    for ax, s in zip(axes, sites, strict=False):
        panel_title(ax, s.site, s.note, PANEL_IN[0])
        ax.scatter(np.asarray(s.x, dtype=float), np.asarray(s.y, dtype=float), s=9, color=LINE, alpha=0.7,
                   linewidths=0)  # fmt: skip
        dashed(ax, y=0.0)
        ax.set_xlabel(xlabel, color=MUTED)
    axes[0].set_ylabel(ylabel, color=MUTED)
    heading(fig, title, f"{xlabel}: {about} · " * bool(about) + "a dot per maze · dashed: 0, no steering")
    return fig


# -- from a report body -------------------------------------------------------------------------------


def _ci(ci: Sequence[float] | None) -> str:
    return f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def _maze_curves(body: Mapping[str, Any], seed: int) -> MazeCurves | None:
    maze = next((m for m in body["mazes"] if m["seed"] == seed), None)
    if maze is None:
        return None
    parts = []
    for r in maze["by_layer"]:
        st = "n/a" if r["steerability"] is None else f"{r['steerability']:.2f}"
        parts.append(f"{(r['class'] or 'undefined').replace('_', ' ')}, s {st}")
    sites = [SiteCurve(r["layer"], r["p"], r["log_odds"], r["crumbled"]) for r in maze["by_layer"]]
    return MazeCurves(seed, "\n".join(parts), sites)


def figures(body: Mapping[str, Any], shown: Sequence[int], head: str) -> dict[str, Figure]:
    """The run's figures from its report body (metrics.json)."""
    target = body["target"]
    curves = [c for c in (_maze_curves(body, s) for s in shown) if c is not None]
    out = {"steerability-curves.png": curves_chart(f"{target} against the coefficient · {head}", body["coeffs"],
                                                    curves, target)}  # fmt: skip
    summaries = body["summary"]["by_layer"]
    dist = []
    for i, s in enumerate(summaries):
        values = [m["by_layer"][i]["steerability"] for m in body["mazes"]]
        st = s["steerability"]
        note = "" if st["median"] is None else f"median {st['median']:.2f}{_ci(st['median_ci'])}, n {st['n']}"
        note += (
            f" · anti-steerable {s['anti_steerable']['value']:.2f}" if s["anti_steerable"]["value"] is not None else ""
        )
        dist.append(SiteValues(s["layer"], [v for v in values if v is not None], note=note))
    unit = "steerability (log-odds per unit coefficient, claimed way +)"
    out["steerability-distribution.png"] = distribution_chart(f"steerability per site · {head}", dist, unit)
    # The predictor with the largest |rho| at the first site that has one, drawn at every site.
    best = next((s["predictors"]["best"] for s in summaries if s["predictors"]["best"]), None)
    if best is not None:
        panels = []
        for i, s in enumerate(summaries):
            pairs = [(m["by_layer"][i].get(best, m.get(best)), m["by_layer"][i]["steerability"]) for m in body["mazes"]]
            pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
            t = s["predictors"]["tests"][best]
            note = "" if t["rho"] is None else f"Spearman rho {t['rho']:.2f}{_ci(t['rho_ci'])}, n {t['n']}"
            panels.append(SiteValues(s["layer"], [y for _, y in pairs], [x for x, _ in pairs], note))
        out["steerability-predictor.png"] = predictor_chart(
            f"steerability against {best} · {head}", panels, best, "steerability", body["predictors"][best]
        )
    return out


__all__ = ["MazeCurves", "SiteCurve", "SiteValues", "curves_chart", "distribution_chart", "figures", "predictor_chart"]
