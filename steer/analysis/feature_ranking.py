"""Reading features over mazes: each unit's (feature's or channel's) score, control and gain per property, with
n and the 95% bootstrap interval of the mean gain over mazes; units ranked per property; the top features.

A unit is ranked by the lower end of its mean gain's interval, not by the mean: a feature that fires on a few
mazes only has a wide interval and a mean that a single maze can make large, and ranking 256 features by their
means would put such features first. Units measured on fewer than MIN_N mazes are not ranked.

`per_maze_top` gives each maze the gains of the run's top feature and top channel per property: the per-maze
numbers a claim "the best feature tracks X at least as well as the best channel" reads as a `versus`. The top
units are chosen on the same mazes, among 256 features against 32 channels, so that comparison favours the
features; a sealed claim names a feature chosen on the discovery sample instead (`by_feature.<i>`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from steer.analysis.feature_maps import PROPERTIES, UnitScores
from steer.analysis.metrics import describe_many
from steer.analysis.stats import intervals, present

MIN_N = 5
KINDS = ("feature", "channel")


@dataclass(frozen=True)
class UnitRow:
    """One unit and property over mazes."""

    kind: str  # feature or channel
    unit: int
    prop: str
    score: dict[str, Any]  # describe(): n, mean, median, ...
    control: dict[str, Any]
    gain: dict[str, Any]  # with mean_ci

    @property
    def low(self) -> float | None:
        ci = self.gain.get("mean_ci")
        return ci[0] if ci else None

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "unit": self.unit,
            "property": self.prop,
            "n": self.gain["n"],
            "score": self.score,
            "control": self.control,
            "gain": self.gain,
        }


def unit_records(maps: Mapping[str, UnitScores], peak: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """One maze's units as records (a list indexed by unit, so a claim names one as `by_feature.<i>`): each
    property's gain at the top (the number a claim reads), its score and control, and the feature's peak."""
    units = len(next(iter(maps.values())).score) if maps else 0
    out: list[dict[str, Any]] = []
    for u in range(units):
        rec: dict[str, Any] = {p: maps[p].gain[u] if p in maps else None for p in PROPERTIES}
        rec["score"] = {p: maps[p].score[u] for p in maps}
        rec["control"] = {p: maps[p].control[u] for p in maps}
        if peak is not None:
            rec["peak"] = peak[u]
        out.append(rec)
    return out


def unit_rows(mazes: Sequence[Mapping[str, Any]]) -> list[UnitRow]:
    """Every unit and property over `mazes` (records with `by_feature` and `by_channel`: `unit_records`)."""
    keys: list[tuple[str, int, str]] = []
    scores, controls, gains = [], [], []
    for kind in KINDS:
        units = max((len(m[f"by_{kind}"]) for m in mazes), default=0)
        for u in range(units):
            for p in PROPERTIES:
                measured = [m[f"by_{kind}"][u] for m in mazes if p in m[f"by_{kind}"][u]["score"]]
                keys.append((kind, u, p))
                scores.append([r["score"][p] for r in measured])
                controls.append([r["control"][p] for r in measured])
                gains.append([r[p] for r in measured])
    plain = describe_many(scores + controls, intervals=False)
    with_ci = mean_intervals(gains)
    n = len(keys)
    return [UnitRow(k, u, p, plain[i], plain[n + i], with_ci[i]) for i, (k, u, p) in enumerate(keys)]


def mean_intervals(columns: Sequence[Sequence[float | None]]) -> list[dict[str, Any]]:
    """`describe` without intervals, and the 95% bootstrap interval of the mean alone (`mean_ci`): the median's
    interval is not read here and doubles the cost over ~1,400 columns. Columns of equal n share one bootstrap
    (`steer.analysis.stats.intervals`), so each interval is the one a call of its own gives."""
    out = describe_many(columns, intervals=False)
    xs = [present(c) for c in columns]
    by_n: dict[int, list[int]] = {}
    for i, x in enumerate(xs):
        out[i]["mean_ci"] = None
        if len(x):
            by_n.setdefault(len(x), []).append(i)
    for chosen in by_n.values():
        (means,) = intervals(np.stack([xs[i] for i in chosen]), (np.mean,))
        for i, ci in zip(chosen, means, strict=True):
            out[i]["mean_ci"] = ci
    return out


def ranked(rows: Sequence[UnitRow], kind: str, prop: str) -> list[UnitRow]:
    """The units of `kind` for `prop` with at least MIN_N mazes and an interval, best (highest lower end) first."""
    kept = [r for r in rows if r.kind == kind and r.prop == prop and r.gain["n"] >= MIN_N and r.low is not None]
    return sorted(kept, key=lambda r: (-(r.low or 0.0), r.unit))


def top_features(rows: Sequence[UnitRow], count: int) -> list[tuple[int, UnitRow]]:
    """The features to draw: each property's top feature (so every property a feature leads gets a card, even when
    its gains are smaller than the cheese's or the mouse's), then the features whose best property's lower end is
    highest, up to `count` (fewer leaders than `count`: the leaders alone when `count` is smaller), each with the
    row it is drawn for."""
    chosen: dict[int, UnitRow] = {}
    for prop in PROPERTIES:
        order = ranked(rows, "feature", prop)
        if order and order[0].unit not in chosen and len(chosen) < count:
            chosen[order[0].unit] = order[0]
    best: dict[int, UnitRow] = {}
    for prop in PROPERTIES:
        for r in ranked(rows, "feature", prop):
            if r.unit not in best or (r.low or 0.0) > (best[r.unit].low or 0.0):
                best[r.unit] = r
    for r in sorted(best.values(), key=lambda r: (-(r.low or 0.0), r.unit)):
        if len(chosen) >= count:
            break
        chosen.setdefault(r.unit, r)
    return list(chosen.items())


def per_maze_top(maze: Mapping[str, Any], leaders: Mapping[str, Mapping[str, int]]) -> dict[str, Any]:
    """`maze`'s gains of each property's top feature and top channel (`leaders`: property -> kind -> unit)."""
    out: dict[str, Any] = {}
    for prop, by_kind in leaders.items():
        entry: dict[str, Any] = {}
        for kind, unit in by_kind.items():
            entry[kind] = unit
            entry[f"{kind}_gain"] = maze[f"by_{kind}"][unit][prop]
        out[prop] = entry
    return out
