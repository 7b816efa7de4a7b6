"""Two vectors' effects on the same target mazes, compared: an averaged (mean-difference) vector against each
target's own single-maze vector, in `steer apply` (`compare: [own]`) and `steer transfer` (`vector.source_seeds`).

The unit is the target maze: each summary is over targets (n, mean, median, 95% bootstrap intervals), and a
paired comparison is the per-target difference a − b with its intervals and a two-sided Wilcoxon signed-rank
p-value (`steer.analysis.metrics.describe_change`, scipy underneath). A target that is among the mean's source mazes
is *in sample* (its own pair is part of the average); summaries are also given over the held-out targets
alone, which is the comparison that says whether one averaged vector generalises. Its chart is
`steer.report.charts.paired_chart` (drawn by `steer.report.transfer_figs` and `steer.studies.apply`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from steer.analysis.metrics import MAZE_KEYS, METRICS, delta, describe, describe_change, summarize

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


def mean_series(
    targets: Sequence[int], mean_pairs: dict[int, dict[str, Any]], pairs: Sequence[dict[str, Any]],
    sources: Sequence[int], key: str,
) -> dict[str, list[float | None]]:  # fmt: skip
    """`steer transfer`'s three series per target, on `key` (a pair's effect, e.g. `delta_p_cheese_ds`): the
    averaged vector's effect (`mean_pairs` by target), the target's own vector's (the matrix's diagonal, from
    `pairs`) and the mean over the other single `sources`' effects on it."""
    by_pair = {(p["source"], p["target"]): p for p in pairs}

    def other(t: int) -> float | None:
        vals = [by_pair[(s, t)][key] for s in sources if s != t and by_pair[(s, t)][key] is not None]
        return sum(vals) / len(vals) if vals else None

    return {
        "mean": [mean_pairs[t][key] for t in targets],
        "own": [by_pair[(t, t)][key] if (t, t) in by_pair else None for t in targets],
        "other": [other(t) for t in targets],
    }


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
