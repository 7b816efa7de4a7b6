"""`steer choose`'s figure: the grid as a heat map, sites by coefficients, each cell the objective on the discovery
mazes, the settings that break a limit marked, the chosen and the reference setting named."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure

from steer.report.charts import heatmap

# A damage measure's name in a cell (four fit side by side): the footer says what each is.
SHORT = {
    "wall_mass": "wall",
    "entropy": "entropy",
    "mean_tv_unaffected": "TV",
    "mean_steps": "steps",
    "steps_to_cheese": "to cheese",
    "p_timeout": "timeout",
}


def choice_chart(
    grid: Sequence[Mapping[str, Any]],
    chosen: Mapping[str, Any] | None,
    reference: Mapping[str, Any],
    title: str,
    objective: str,
    limits: str,
) -> Figure:
    """The grid's objective per site (rows, in the spec's order) and coefficient (columns): under a cell's value
    'over: ...' (the limits it breaks), 'CHOSEN' and 'reference', each on a line of its own."""
    sites = list(dict.fromkeys(r["site"] for r in grid))
    coeffs = list(dict.fromkeys(r["coeff"] for r in grid))
    by = {(r["site"], r["coeff"]): r for r in grid}
    values: list[list[float | None]] = []
    notes: list[list[str]] = []
    for s in sites:
        values.append([by[(s, c)]["objective"] if (s, c) in by else None for c in coeffs])
        row = []
        for c in coeffs:
            r = by.get((s, c))
            marks = []
            if r is not None and not r["feasible"]:
                marks.append("over: " + ", ".join(SHORT[v.split(" ", 1)[0]] for v in r["violations"]))
            if chosen is not None and (chosen["site"], chosen["coeff"]) == (s, c):
                marks.append("CHOSEN")
            if (reference["site"], reference["coeff"]) == (s, c):
                marks.append("reference")
            row.append("\n".join(marks))
        notes.append(row)
    footer = f"cell: {objective}, over the discovery mazes\nlimits: {limits}"
    footer += "\nover: the limits a setting breaks, the upper end of the measure's 95% interval above the limit (wall: "
    footer += "P(move into a wall), TV: on the unaffected variant, steps: episode length, timeout: P(times out))"
    if not any((reference["site"], reference["coeff"]) == (s, c) for s in sites for c in coeffs):
        footer += f"\nreference {reference['site']} x {reference['coeff']:g} (not in the grid): {_fmt(reference)}"
    if chosen is None:
        footer += "\nno setting meets the limits: none chosen"
    return heatmap(
        title,
        sites,
        [f"{c:g}" for c in coeffs],
        values,
        notes,
        ("site", "coefficient"),
        footer=footer,
        scale_label="objective",
    )


def _fmt(row: Mapping[str, Any]) -> str:
    v = row["objective"]
    return ("n/a" if v is None else f"{v:+.3f}") + ("" if row["feasible"] else " (over a limit)")


__all__ = ["choice_chart"]
