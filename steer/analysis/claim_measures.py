"""Measuring a claim: one number per maze (or transfer pair) keyed by its seed, what was left out and why, and
the summary the verdict reads.

Kinds (each over the mazes of one experiment's metrics.json; `steer.analysis.claims` documents the keys):

- change:   patched − original of a field metric, on a `scale` (SCALES); paired, Wilcoxon signed-rank p;
- value:    one number per maze (`side: patched|original` of a field metric, or a comparison metric);
- versus:   per maze, this measure minus (`minus:`) or plus (`plus:`) another measure on the same mazes; paired;
- contrast: the mean of this measure's mazes minus the mean of `minus:`'s mazes, two groups of different mazes
            (e.g. small against large mazes): a two-group bootstrap interval and a Mann-Whitney p;
- trend:    per maze, Spearman's rho between `coeffs:` and the patched value at each; a maze whose values are all
            equal shows no trend and enters with rho 0 (counted as flat), never dropped;
- reported: a {value, ci} record the study computed over its mazes (no per-maze values).

Nothing is dropped without a count: every summary carries `excluded` (reason: count of mazes left out) and, for
trends, `flat`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special as spc
from scipy import stats as sps

from steer.analysis.claim_types import Measure, Summary
from steer.analysis.metrics import describe
from steer.analysis.stats import (
    bca_intervals,
    difference_intervals,
    mann_whitney_p,
    min_detectable_difference,
    min_detectable_effect,
    two_way_intervals,
    wilcoxon_p,
)
from steer.errors import SteerError, excerpt

KINDS = ("change", "value", "versus", "contrast", "trend", "reported")
# How a change of a probability is measured: patched - original ("raw"), the share of the room in the direction
# moved ("headroom": a gain over 1 - original, a loss over original), or the change in log-odds (probabilities
# clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP]). The last two do not depend on how close to the ceiling the mazes in a
# subset start, which the raw change does.
SCALES = ("raw", "headroom", "logit")
LOGIT_CLIP = 1e-4
Reports = Mapping[str, Mapping[str, Any]]


@dataclass
class Keyed:
    """One number per maze (a seed, or a (source, target) transfer pair), in the report's order, and the count of
    mazes left out under each reason."""

    values: dict[Any, float] = field(default_factory=dict)
    excluded: Counter[str] = field(default_factory=Counter)
    flat: int = 0  # trends: mazes whose values were all equal (rho 0)
    pairs: bool = False  # keys are (source, target) transfer pairs

    def array(self) -> np.ndarray:
        return np.array(list(self.values.values()), dtype=np.float64)


def get(record: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if record is None:
            return None
        record = record[int(key)] if isinstance(record, list) else record.get(key)
    return record


def _key(seed: Any) -> Any:
    return tuple(seed) if isinstance(seed, list) else seed


def _rows(report: Mapping[str, Any], m: Measure, out: Keyed) -> list[dict[str, Any]]:
    """One record per maze (or per transfer pair) that the measure reads; mazes the study skipped, and those
    outside the claim's `where:` subset, are counted in `out.excluded`."""
    if "pairs" in m:
        pick = {
            "own": lambda p: p["source"] == p["target"],
            "same_dim": lambda p: p["source"] != p["target"] and p["same_maze_dim"],
            "other_dim": lambda p: not p["same_maze_dim"],
        }[m["pairs"]]
        rows = [
            {
                **p["metrics"],
                "seed": (p["source"], p["target"]),
                "maze_dim": p["target_maze_dim"],
                "source_maze_dim": p["source_maze_dim"],
            }
            for p in report["pairs"]
            if pick(p)
        ]
    else:
        rows = []
        for maze in report["mazes"]:
            row = maze
            if "coeff" in m:
                row = {**maze, **next(r for r in maze["by_coeff"] if r["coeff"] == m["coeff"])}
            if "layer" in m:
                row = {**maze, **next(r for r in maze["by_layer"] if r["layer"] == m["layer"])}
            rows.append(row)
        skipped = report.get("skipped") or []
        if skipped:  # the reasons are in the experiment's metrics.json; the first one's start says what kind
            reason = " ".join(str(skipped[0].get("reason", "")).split())
            shown = reason if len(reason) <= 48 else reason[:47].rstrip() + "…"
            out.excluded[f"skipped by the experiment (e.g. {shown})"] += len(skipped)
    for cond in m.get("where", ()):
        value_of: Callable[[dict[str, Any]], Any] = lambda r, k=cond["key"]: get(r, k)  # noqa: E731
        kept = rows
        if "below" in cond:
            kept = [r for r in kept if value_of(r) is not None and value_of(r) < cond["below"]]
        if "above" in cond:
            kept = [r for r in kept if value_of(r) is not None and value_of(r) > cond["above"]]
        if "equals" in cond:
            kept = [r for r in kept if value_of(r) == cond["equals"]]
        if len(kept) < len(rows):
            shown = ", ".join(f"{k} {v}" for k, v in cond.items() if k != "key")
            out.excluded[f"outside the claim's subset ({cond['key']} {shown})"] += len(rows) - len(kept)
        rows = kept
    return rows


def on_scale(before: np.ndarray, after: np.ndarray, scale: str) -> np.ndarray:
    """Each maze's change on the measure's scale (SCALES)."""
    if scale == "headroom":
        # the share of the room in the direction moved (Marx and Cummings' normalised change): a gain over the
        # room above, a loss over the room below, so a maze a hair under 1 that slips by 1e-5 counts -1e-5/0.99
        # and not -1 (a gain over the room above alone explodes there). In [-1, 1]; unmoved mazes 0.
        change = after - before
        room = np.where(change > 0, 1.0 - before, before)
        return np.divide(change, room, out=np.zeros_like(change), where=room > 0)
    if scale == "logit":
        lo, hi = np.clip(before, LOGIT_CLIP, 1 - LOGIT_CLIP), np.clip(after, LOGIT_CLIP, 1 - LOGIT_CLIP)
        return spc.logit(hi) - spc.logit(lo)
    return after - before


def _number(rec: Mapping[str, Any], m: Measure) -> float | None:
    """The measure's number in one maze's record: a plain number, one side of a field metric, or its change
    (patched − original) on the measure's scale."""
    value = rec.get(m["metric"])
    if not isinstance(value, dict):
        return None if value is None else float(value)
    if m.get("side"):
        side = value.get(m["side"])
        return None if side is None else float(side)
    if value.get("original") is None or value.get("patched") is None:
        return None
    before, after = np.array([value["original"]], dtype=np.float64), np.array([value["patched"]], dtype=np.float64)
    return float(on_scale(before, after, m.get("scale", "raw"))[0])


def keyed(reports: Reports, m: Measure) -> Keyed:
    """The per-maze numbers of a change, value, versus or trend measure, keyed by seed."""
    out = Keyed(pairs="pairs" in m)
    kind = m.get("kind", "change")
    if kind == "versus":
        this = keyed(reports, {**m, "kind": "value"})
        other_m = m.get("minus") or m["plus"]
        other = keyed(reports, other_m)
        sign = -1.0 if "minus" in m else 1.0
        # What this side left out, and the mazes it kept that the other side did not measure (the other side's
        # own reasons would count the mazes both sides left out twice).
        out.excluded = this.excluded.copy()
        missing = [k for k in this.values if k not in other.values]
        if missing:
            out.excluded["not measured by the other measure"] += len(missing)
        out.values = {k: v + sign * other.values[k] for k, v in this.values.items() if k in other.values}
        return out
    report = reports[m["experiment"]]
    if kind == "trend":
        coeffs = list(m["coeffs"])
        by = [keyed(reports, {**m, "kind": "value", "side": "patched", "coeff": c}) for c in coeffs]
        out.excluded = by[0].excluded
        for seed in by[0].values:
            ys = [b.values.get(seed) for b in by]
            if any(y is None for y in ys):
                out.excluded["a coefficient's value undefined"] += 1
            elif len(set(ys)) == 1:
                out.values[seed] = 0.0  # no change with the coefficient: no trend, and it counts as such
                out.flat += 1
            else:
                out.values[seed] = float(sps.spearmanr(coeffs, ys).statistic)
        return out
    for row in _rows(report, m, out):
        rec = get(row, m["source"]) if m.get("source") else row
        if not isinstance(rec, dict):
            out.excluded[f"no {m['source']} record"] += 1
            continue
        value = _number(rec, m)
        if value is None:
            out.excluded[f"{m['metric']} undefined (e.g. no decision square)"] += 1
            continue
        out.values[_key(row["seed"])] = value
    return out


def summarise(
    x: np.ndarray, p: float | None, paired: bool = False, what: str | None = None, pairs: list[Any] | None = None
) -> Summary:
    """describe() of the values with the claims' intervals: BCa, or for transfer `pairs` (source, target) the
    two-way cluster bootstrap over source and target mazes, since pairs that share a maze are not independent."""
    if pairs is not None and len(x) >= 2:
        mean_ci, median_ci = two_way_intervals(x, [k[0] for k in pairs], [k[1] for k in pairs])
        sources, targets = len({k[0] for k in pairs}), len({k[1] for k in pairs})
        method = f"two-way cluster bootstrap over {sources} source and {targets} target mazes"
    else:
        mean_ci, median_ci, method = bca_intervals(x)
    out = {
        **describe(list(x), intervals=False),
        "mean_ci": mean_ci,
        "median_ci": median_ci,
        "interval": method,
        "mde": min_detectable_effect(x),
        "paired": paired,
        "per_maze": [float(v) for v in x],
    }
    if p is not None or paired or what:
        out["wilcoxon_p"] = p
    if what:
        out["what"] = what
    return out


def with_counts(summary: Summary, k: Keyed) -> Summary:
    summary["excluded"] = dict(k.excluded)
    summary["n_excluded"] = sum(k.excluded.values())
    if k.flat:
        summary["flat"] = k.flat
    return summary


def of_keyed(k: Keyed, kind: str) -> Summary:
    """The summary of a keyed measure: paired kinds (change, versus, trend) get a Wilcoxon p against 0."""
    x = k.array()
    pairs = list(k.values) if k.pairs else None
    if kind in ("change", "versus", "trend"):
        what = "Spearman rho per maze" if kind == "trend" else None
        out = summarise(x, wilcoxon_p(x, np.zeros_like(x)), paired=kind != "trend", what=what, pairs=pairs)
    else:
        out = summarise(x, None, pairs=pairs)
    return with_counts(out, k)


def contrast(reports: Reports, m: Measure) -> Summary:
    """Two groups of different mazes: this measure's minus `minus:`'s, mean against mean."""
    a, b = keyed(reports, {**m, "kind": "value"}), keyed(reports, m["minus"])
    x, y = a.array(), b.array()
    mean_ci, median_ci, method = difference_intervals(x, y)
    both = Keyed(excluded=a.excluded + Counter({f"second group: {k}": v for k, v in b.excluded.items()}))
    out = {
        "n": min(len(x), len(y)),
        "n_groups": [len(x), len(y)],
        "mean": float(x.mean() - y.mean()) if len(x) and len(y) else None,
        "median": float(np.median(x) - np.median(y)) if len(x) and len(y) else None,
        "mean_ci": mean_ci,
        "median_ci": median_ci,
        "interval": method,
        "mde": min_detectable_difference(x, y),
        "paired": False,
        "wilcoxon_p": None,
        "mann_whitney_p": mann_whitney_p(x, y),
        "per_maze": [],  # two groups: no per-maze difference (pooling takes each sample's own)
        "groups": {"first": [float(v) for v in x], "second": [float(v) for v in y]},
    }
    return with_counts(out, both)


def reported(report: Mapping[str, Any], m: Measure) -> Summary:
    """A {value, ci} record the study computed over its mazes, as a summary the verdict can read."""
    record, n = get(report, m["path"]), get(report, m["n"])
    if not isinstance(record, dict) or not isinstance(n, int):
        raise SteerError(
            f"measure.path: {excerpt(m['path'])} (or n: {excerpt(m['n'])}) names no {{value, ci}} record in experiment "
            f"{excerpt(m['experiment'])}'s metrics.json; check the path against that file."
        )
    value, ci = record.get("value"), record.get("ci")
    return {
        "n": n,
        "mean": value,
        "median": value,
        "mean_ci": ci,
        "median_ci": ci,
        "interval": record.get("interval", "as the study reports it"),
        "mde": None,
        "paired": False,
        "per_maze": [],
        "excluded": {},
        "n_excluded": 0,
    }


def measure(reports: Reports, m: Measure) -> Summary:
    """A measure's summary: n, mean, median, their intervals, a p-value where the kind has one, the minimum
    detectable effect, what was excluded and why, and `per_maze`: the values it summarises."""
    kind = m.get("kind", "change")
    if kind == "reported":
        return reported(reports[m["experiment"]], m)
    if kind == "contrast":
        return contrast(reports, m)
    out = of_keyed(keyed(reports, m), kind)
    if kind == "change" and m.get("scale", "raw") != "raw":
        out["scale"] = m["scale"]
    return out


def beyond_control(reports: Reports, m: Measure, control: Measure) -> Summary:
    """Per maze the measure minus its control on the same maze (a change beside a norm-matched random vector's,
    say): paired, with a Wilcoxon p against 0. Mazes without a control value are counted as excluded."""
    effect, ctrl = keyed(reports, m), keyed(reports, control)
    out = Keyed(excluded=effect.excluded.copy(), pairs=effect.pairs)
    missing = [k for k in effect.values if k not in ctrl.values]
    if missing:
        out.excluded["no control value"] += len(missing)
    out.values = {k: v - ctrl.values[k] for k, v in effect.values.items() if k in ctrl.values}
    return of_keyed(out, "versus")
