"""Two vectors' effects on the same target mazes, compared: an averaged (mean-difference) vector against each
target's own single-maze vector, in `steer apply` (`compare: [own]`) and `steer transfer` (`vector.source_seeds`).

The unit is the target maze: each summary is over targets (n, mean, median, 95% bootstrap intervals), and a
paired comparison is the per-target difference a − b with its intervals and a two-sided Wilcoxon signed-rank
p-value (`steer.metrics.describe_change`, scipy underneath). A target that is among the mean's source mazes
is *in sample* (its own pair is part of the average); summaries are also given over the held-out targets
alone, which is the comparison that says whether one averaged vector generalises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PIL import Image, ImageDraw

from steer.charts import GRID_RGB, _dashed_hline, _tick_label, nice_ticks
from steer.metrics import MAZE_KEYS, METRICS, delta, describe, describe_change, summarize
from steer.render import BG_RGB, TEXT_RGB, font, text_width

# Series colours of the paired chart: the averaged vector, each target's own vector, other single mazes.
SERIES_RGB = {"mean": (200, 90, 20), "vector": (200, 90, 20), "own": (24, 48, 120), "other": (120, 120, 120)}
COMPARISONS = ("own",)  # apply's `compare:` names


def mean_label(seeds: Sequence[int]) -> str:
    """'mean of seeds 0-99 (100 mazes)', or 'mean of 3 mazes (0, 5, 9)' for seeds that are not a range."""
    if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"mean of seeds {seeds[0]}-{seeds[-1]} ({len(seeds)} mazes)"
    shown = ", ".join(map(str, seeds[:10])) + (", …" if len(seeds) > 10 else "")
    return f"mean of {len(seeds)} mazes ({shown})"


def paired(a: Sequence[float | None], b: Sequence[float | None]) -> dict[str, Any]:
    """a − b per target (targets where both are defined): summary, intervals and the Wilcoxon p-value."""
    return describe_change(b, a)


def difference_text(diff: dict[str, Any]) -> str:
    """'difference +0.688 (95% CI +0.553 to +0.823, Wilcoxon p 0.5, n 2)' from a `paired` summary."""
    if diff["mean"] is None:
        return "difference n/a (n 0)"
    ci, p = diff["mean_ci"], diff["wilcoxon_p"]
    parts = [f"95% CI {ci[0]:+.3f} to {ci[1]:+.3f}"] if ci else []
    parts += [f"Wilcoxon p {p:.2g}"] if p is not None else []
    parts.append(f"n {diff['n']}")
    return f"difference {diff['mean']:+.3f} ({', '.join(parts)})"


def subsets(in_sample: Sequence[bool]) -> dict[str, list[int]]:
    """The target indices a comparison is summarised over: all, and the held-out / in-sample ones when mixed."""
    out = {"all": list(range(len(in_sample)))}
    held = [i for i, s in enumerate(in_sample) if not s]
    if len(held) < len(in_sample):
        out["held_out"], out["in_sample"] = held, [i for i, s in enumerate(in_sample) if s]
    return out


def compare_series(series: Mapping[str, Sequence[float | None]], in_sample: Sequence[bool]) -> dict[str, Any]:
    """Per subset of targets: each series summarised, and every later series' paired difference from the first.

    `series` maps a name (`mean`, `own`, `other`) to one value per target, aligned with `in_sample`; the first
    series is the one compared (the averaged vector), e.g. `mean_minus_own`.
    """
    names = list(series)
    out: dict[str, Any] = {}
    for subset, idx in subsets(in_sample).items():
        pick = {name: [series[name][i] for i in idx] for name in names}
        block: dict[str, Any] = {"targets": len(idx), **{name: describe(v) for name, v in pick.items()}}
        for other in names[1:]:
            block[f"{names[0]}_minus_{other}"] = paired(pick[names[0]], pick[other])
        if len(names) > 2:  # own vs other single mazes, the transfer matrix's diagonal against the rest
            block[f"{names[1]}_minus_{names[2]}"] = paired(pick[names[1]], pick[names[2]])
        out[subset] = block
    return out


def change_of(value: Any) -> float | None:
    """A metric's effect on one maze: patched − original for a field metric, the value for a comparison metric."""
    return delta(value) if isinstance(value, dict) else value


def effect_key(metric: str) -> str:
    """How an effect metric is keyed in the summaries and transfer's matrices: `delta_<name>` for a field
    metric (its change), the name itself for a comparison metric."""
    return f"delta_{metric}" if METRICS[metric].paired else metric


def own_series(mazes: Sequence[dict[str, Any]], metric: str) -> dict[str, list[float | None]]:
    """Per maze whose own vector was built: the spec's vector's effect and the own vector's, on `metric`."""
    return {
        "vector": [change_of(m[metric]) for m in mazes],
        "own": [change_of(m["compare"]["own"][metric]) for m in mazes],
    }


def own_summary(mazes: Sequence[dict[str, Any]], effect_metric: str) -> dict[str, Any]:
    """`steer apply` with `compare: [own]`: the spec's vector against each maze's own vector of the same pair.

    `own`: the own vectors' metrics summarised like the effect's (over the mazes where the own pair could be
    built); `by_target`: per metric the two effects per maze and `vector_minus_own` with its interval and
    Wilcoxon p-value (all / held-out / in-sample mazes); `norms`: each vector's L2 norm over mazes.
    """
    have = [m for m in mazes if m["compare"]["own"] is not None]
    rows = [{**m["compare"]["own"], **{k: m[k] for k in MAZE_KEYS}} for m in have]
    in_sample = [m["compare"]["own"]["in_sample"] for m in have]
    by_target: dict[str, Any] = {"targets": [m["seed"] for m in have]}
    for metric in dict.fromkeys((effect_metric, "mean_tv")):
        by_target[effect_key(metric)] = compare_series(own_series(have, metric), in_sample)
    return {
        "own": summarize(rows),
        "by_target": by_target,
        "norms": {
            "vector": describe([m["vector_norm"] for m in mazes]),
            "own": describe([m["compare"]["own"]["norm"] for m in have]),
        },
        "unbuilt": {str(m["seed"]): m["compare"]["own_reason"] for m in mazes if m["compare"]["own"] is None},
    }


def paired_chart(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    names: Mapping[str, str],
    ylabel: str,
    footer: str = "",
    marked: Sequence[bool] = (),
    marked_note: str = "",
) -> Image.Image:
    """One column per target (those where any series is defined), a dot per series joined by a thin line.

    `names` gives each series' legend text; `marked` targets (in sample) get an asterisk after their label,
    and the footer `marked_note` where any is drawn. A dashed line marks 0 (no effect).
    """
    keep = [i for i in range(len(labels)) if any(series[k][i] is not None for k in series)]
    if any(marked[i] for i in keep) and marked_note:  # the asterisk is explained only where one is drawn
        footer = f"{footer}\n* {marked_note}" if footer else f"* {marked_note}"
    col_w, left, right, top, bottom = 28, 64, 16, 74, 70
    plot_h = 300
    width = max(left + right + col_w * max(len(keep), 1), 560, int(text_width(title, 16)) + 24)
    height = top + plot_h + bottom + (22 * len(footer.split("\n")) if footer else 0)
    img = Image.new("RGB", (width, height), BG_RGB)
    d = ImageDraw.Draw(img)
    d.text((12, 10), title, fill=TEXT_RGB, font=font(16))
    x = 12.0
    for key, text in names.items():
        d.ellipse((x, 40, x + 10, 50), fill=SERIES_RGB.get(key, TEXT_RGB))
        d.text((x + 14, 37), text, fill=TEXT_RGB, font=font(12))
        x += 28 + text_width(text, 12)
    values = [series[k][i] for k in series for i in keep if series[k][i] is not None]
    if not values:
        d.text((left, top + plot_h // 2), "undefined for every target", fill=(120, 120, 120), font=font(13))
        return img
    lo, hi = min(0.0, *values), max(0.0, *values)
    pad = 0.06 * (hi - lo) or 0.05
    y_lo, y_hi = lo - pad, hi + pad
    ticks = [t for t in nice_ticks(y_lo, y_hi) if y_lo <= t <= y_hi]
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0

    def py(v: float) -> float:
        return top + plot_h * (1 - (v - y_lo) / (y_hi - y_lo))

    for t in ticks:
        d.line([(left, py(t)), (width - right, py(t))], fill=GRID_RGB, width=1)
        label = _tick_label(t, step)
        d.text((left - 6 - text_width(label, 11), py(t) - 7), label, fill=TEXT_RGB, font=font(11))
    d.text((12, top - 18), ylabel, fill=(90, 90, 90), font=font(12))
    d.rectangle((left, top, width - right, top + plot_h), outline=(160, 160, 160))
    _dashed_hline(d, left, width - right, py(0.0), (150, 150, 150))
    for col, i in enumerate(keep):
        cx = left + col_w * (col + 0.5)
        # Each series a little apart within the column, so equal values (all at 0) stay visible side by side.
        points = [(cx + 6 * (n - (len(series) - 1) / 2), k, series[k][i]) for n, k in enumerate(series)]
        points = [(x, k, py(v)) for x, k, v in points if v is not None]
        if len(points) > 1:
            d.line([(x, y) for x, _, y in points], fill=(190, 190, 190), width=2)
        for x, k, y in points:
            d.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=SERIES_RGB.get(k, TEXT_RGB))
        star = "*" if marked and marked[i] else ""
        label = labels[i] + star
        # Three-digit seeds are nearly as wide as a column: every other label goes one line lower.
        ly = top + plot_h + 6 + 12 * (col % 2)
        d.text((cx - text_width(label, 10) / 2, ly), label, fill=TEXT_RGB, font=font(10))
    d.text((left, top + plot_h + 36), "target seed", fill=(90, 90, 90), font=font(12))
    for k, line in enumerate(footer.split("\n") if footer else []):
        d.text((12, top + plot_h + bottom + 22 * k - 18), line, fill=(90, 90, 90), font=font(12))
    return img
