"""Claims: a sentence of the post, the setting that tests it, a criterion written before the run, a verdict.

A batch file may carry `claims:`; each is evaluated mechanically from its experiments' metrics.json once the
batch has run. A measurement is a statistic over mazes with its 95% bootstrap interval (BCa, which holds at
small n better than the percentile interval; over transfer pairs a two-way cluster bootstrap that resamples
source and target mazes together, since pairs that share a maze are not independent); the criterion is on
the interval, so a verdict is

- holds:        the whole interval lies on the claimed side of the threshold (or inside the claimed band);
- fails:        the whole interval lies on the other side (or outside the band);
- inconclusive: the interval straddles the threshold;
- underpowered: it straddles, and is wider than the criterion's `precision` (the largest 95% half-width that can
                tell "no effect" from a small one): the sample cannot decide the claim. An interval wholly on one
                side decides it, however wide;
- vacuous:      a precondition does not hold (e.g. the agent never pursues the cheese, a ceiling), or too few
                mazes to measure.

Beside the verdict each row gives the minimum detectable effect at its n (80% power), the per-maze
steerability (the fractions of mazes moved the claimed way, the opposite way and not at all, with Wilson
intervals, and the control's), and Holm-adjusted p-values over the batch's claims (steer.analysis.stats).

    - id: cheese-subtract
      post: "…the post's sentence…"
      setting: "each maze's own cheese vector × −1 at block2.res1.resadd_out, seeds 0–99 (the post's)"
      measure: {experiment: cheese-100, metric: p_cheese_ds, kind: change}
      criterion: {statistic: mean, below: -0.3}          # optional: precision: 0.05 (the largest half-width)
      control: {experiment: cheese-100, metric: p_cheese_ds, kind: change, source: controls.random}
      precondition: {measure: {…}, criterion: {…}, reason: "the agent pursues the cheese"}
      expect: holds

Measurement kinds (over one value per maze):
- change: patched − original of a field metric (Wilcoxon p-value too);
- value:  one number per maze (`side: patched|original` of a field metric, or a comparison metric);
- versus: `metric` of this measure minus the same maze's value in `minus:` (another measure), e.g. both
          vectors together vs −cheese alone;
- trend:  per maze, Spearman's rho between `coeffs:` and the patched value at each (a sweep);
- reported: a number the experiment's report states with its own interval over mazes, at the dotted `path:` of
          a record {value, ci} (e.g. a regression coefficient with its bootstrap interval, or an accuracy gain
          in `steer behaviour-stats`), its n at the dotted `n:` path. The verdict reads that interval.
A change may be measured on another `scale:` (raw, headroom, logit; see SCALES) so that it does not depend on
how near the ceiling the mazes start. Rows: `coeff:` picks a sweep's row, `layer:` a layer sweep's, `source:` a
sub-record (`controls.random`, `controls.input_edit`, `singles.0`), `pairs: own|same_dim|other_dim` a transfer's
pairs, `where:` filters mazes ({key: maze_dim, below: 9}, {key: p_cheese_ds.original, below: 0.95}).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np
from scipy import special as spc
from scipy import stats as sps

from steer.analysis.metrics import describe, fmt
from steer.analysis.stats import (
    bca_intervals,
    holm,
    min_detectable_effect,
    paired_values,
    proportion,
    two_way_intervals,
    wilcoxon_p,
)
from steer.errors import SteerError, excerpt

VERDICTS = ("holds", "fails", "does not replicate", "inconclusive", "underpowered", "vacuous")
KINDS = ("change", "value", "versus", "trend", "reported")
MIN_MAZES = 5
# How a change of a probability is measured: patched - original ("raw"), the share of the room in the direction
# moved ("headroom": a gain over 1 - original, a loss over original), or the change in log-odds (probabilities
# clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP]). The last two do not depend on how close to the ceiling the mazes in a
# subset start, which the raw change does.
SCALES = ("raw", "headroom", "logit")
LOGIT_CLIP = 1e-4
# A maze whose change is smaller than this, in absolute value, counts as unmoved in the steerability fractions
# (the metrics claims measure changes of are probabilities).
UNMOVED = 0.01


@dataclass(frozen=True)
class Claim:
    id: str
    post: str
    setting: str
    measure: dict[str, Any]
    criterion: dict[str, Any]
    control: dict[str, Any] | None = None
    precondition: dict[str, Any] | None = None
    expect: str | None = None
    figures: tuple[str, ...] = ()
    extra: bool = False  # a second setting, not the post's own: labelled as such


# -- parsing ---------------------------------------------------------------------------------------

_CLAIM_KEYS = ("id", "post", "setting", "measure", "criterion", "control", "precondition", "expect", "figures", "extra")


def parse_claims(value: Any, experiments: Sequence[str]) -> tuple[Claim, ...]:
    """The `claims:` of a batch file, checked against its experiment names before anything runs."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SteerError(f"claims: expected a list of claims, got {excerpt(value)}.")
    out = []
    for i, item in enumerate(value):
        where = f"claims[{i}]"
        if not isinstance(item, dict):
            raise SteerError(f"{where}: expected a mapping with id, post, setting, measure and criterion.")
        unknown = [k for k in item if k not in _CLAIM_KEYS]
        if unknown:
            raise SteerError(f"{where}.{excerpt(unknown[0])}: unknown key. Valid keys: {', '.join(_CLAIM_KEYS)}.")
        for key in ("id", "post", "setting", "measure", "criterion"):
            if item.get(key) is None:
                raise SteerError(f"{where}.{key}: missing.")
        _check_measure(item["measure"], f"{where}.measure", experiments)
        _check_criterion(item["criterion"], f"{where}.criterion")
        if item.get("control") is not None:
            _check_measure(item["control"], f"{where}.control", experiments)
        pre = item.get("precondition")
        if pre is not None:
            if not isinstance(pre, dict) or "measure" not in pre or "criterion" not in pre:
                raise SteerError(f"{where}.precondition: expected {{measure, criterion, reason}}.")
            _check_measure(pre["measure"], f"{where}.precondition.measure", experiments)
            _check_criterion(pre["criterion"], f"{where}.precondition.criterion")
        if item.get("expect") is not None and item["expect"] not in VERDICTS:
            raise SteerError(f"{where}.expect: {excerpt(item['expect'])} is not one of {', '.join(VERDICTS)}.")
        out.append(
            Claim(
                str(item["id"]),
                str(item["post"]),
                str(item["setting"]),
                item["measure"],
                item["criterion"],
                item.get("control"),
                pre,
                item.get("expect"),
                tuple(item.get("figures") or ()),
                bool(item.get("extra", False)),
            )
        )
    ids = [c.id for c in out]
    if len(set(ids)) < len(ids):
        raise SteerError("claims: two claims share an id; give each its own.")
    return tuple(out)


def _check_measure(m: Any, where: str, experiments: Sequence[str]) -> None:
    if not isinstance(m, dict):
        raise SteerError(f"{where}: expected a mapping with experiment, metric and kind.")
    if m.get("experiment") not in experiments:
        raise SteerError(f"{where}.experiment: {excerpt(m.get('experiment'))} is not an experiment of this batch.")
    if m.get("kind", "change") not in KINDS:
        raise SteerError(f"{where}.kind: {excerpt(m.get('kind'))} is not one of {', '.join(KINDS)}.")
    if m.get("kind") == "reported":
        for key in ("path", "n"):
            if not isinstance(m.get(key), str):
                raise SteerError(
                    f"{where}.{key}: missing; a reported measure names the dotted path of a {{value, ci}} record in "
                    "the experiment's metrics.json (path:) and of its number of mazes (n:)."
                )
        return
    if not isinstance(m.get("metric"), str):
        raise SteerError(f"{where}.metric: missing; name a metric such as p_cheese_ds.")
    if m.get("kind") == "versus":
        _check_measure(m.get("minus"), f"{where}.minus", experiments)
    if m.get("scale", "raw") not in SCALES:
        raise SteerError(f"{where}.scale: {excerpt(m.get('scale'))} is not one of {', '.join(SCALES)}.")
    if m.get("scale", "raw") != "raw" and m.get("kind", "change") != "change":
        raise SteerError(f"{where}.scale: a scale applies to a change (kind: change), not to kind {m.get('kind')}.")


def _check_criterion(c: Any, where: str) -> None:
    if not isinstance(c, dict) or sum(k in c for k in ("above", "below", "within")) != 1:
        raise SteerError(
            f"{where}: expected one of {{above: x}}, {{below: x}}, {{within: [lo, hi]}}, "
            "with an optional statistic: mean | median."
        )
    if c.get("statistic", "mean") not in ("mean", "median"):
        raise SteerError(f"{where}.statistic: use mean or median.")
    precision = c.get("precision")
    number = isinstance(precision, int | float) and not isinstance(precision, bool)
    if precision is not None and (not number or precision <= 0):
        raise SteerError(
            f"{where}.precision: {excerpt(precision)} is not a positive number; give the largest 95% interval "
            "half-width that can decide the claim, e.g. precision: 0.05."
        )


# -- measuring -------------------------------------------------------------------------------------


def _get(record: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if record is None:
            return None
        record = record[int(key)] if isinstance(record, list) else record.get(key)
    return record


def _rows(report: dict[str, Any], m: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per maze (or per transfer pair) that the measure reads, keyed by seed."""
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
    for cond in m.get("where", ()):
        value_of: Callable[[dict[str, Any]], Any] = lambda r, k=cond["key"]: _get(r, k)  # noqa: E731
        if "below" in cond:
            rows = [r for r in rows if value_of(r) is not None and value_of(r) < cond["below"]]
        if "above" in cond:
            rows = [r for r in rows if value_of(r) is not None and value_of(r) > cond["above"]]
        if "equals" in cond:
            rows = [r for r in rows if value_of(r) == cond["equals"]]
    return rows


def _per_maze(rows: list[dict[str, Any]], m: dict[str, Any]) -> dict[Any, Any]:
    out = {}
    for row in rows:
        rec = _get(row, m["source"]) if m.get("source") else row
        value = None if rec is None else rec.get(m["metric"])
        if isinstance(value, dict):
            side = m.get("side")
            value = (
                value[side]
                if side
                else (
                    None
                    if value["original"] is None or value["patched"] is None
                    else value["patched"] - value["original"]
                )
            )
        out[_key(row["seed"])] = value
    return out


def _key(seed: Any) -> Any:
    return tuple(seed) if isinstance(seed, list) else seed


def measure(reports: dict[str, dict[str, Any]], m: dict[str, Any]) -> dict[str, Any]:
    """A measure's summary: n, mean, median, their intervals, a p-value where the kind has one, the minimum
    detectable effect, and `per_maze`: the values it summarises (per-maze changes for change and versus)."""
    report = reports[m["experiment"]]
    kind = m.get("kind", "change")
    if kind == "reported":
        return _reported(report, m)
    if kind == "trend":
        coeffs = list(m["coeffs"])
        by = [_per_maze(_rows(report, {**m, "coeff": c}), {**m, "side": "patched"}) for c in coeffs]
        rhos = []
        for seed in by[0]:
            ys = [b.get(seed) for b in by]
            if all(y is not None for y in ys) and len(set(ys)) > 1:
                rhos.append(float(sps.spearmanr(coeffs, ys).statistic))
        x = np.array(rhos)
        return _summary(x, wilcoxon_p(x, np.zeros_like(x)), what="Spearman rho per maze")
    values = _per_maze(_rows(report, m), m)
    if kind == "versus":
        other = _per_maze(_rows(reports[m["minus"]["experiment"]], m["minus"]), m["minus"])
        seeds = [s for s in values if s in other]
        before, after = paired_values([other[s] for s in seeds], [values[s] for s in seeds])
        return _summary(after - before, wilcoxon_p(after, before), paired=True)
    if kind == "change" and m.get("side") is None:
        keyed = []
        for r in _rows(report, m):
            rec = _get(r, m["source"]) if m.get("source") else r
            value = None if rec is None else rec.get(m["metric"])
            if isinstance(value, dict) and value["original"] is not None and value["patched"] is not None:
                keyed.append((_key(r["seed"]), value["original"], value["patched"]))
        before = np.array([o for _, o, _ in keyed], dtype=np.float64)
        after = np.array([p for _, _, p in keyed], dtype=np.float64)
        scale = m.get("scale", "raw")
        changes = _on_scale(before, after, scale)
        pairs = [k for k, _, _ in keyed] if "pairs" in m else None
        out = _summary(changes, wilcoxon_p(changes, np.zeros_like(changes)), paired=True, pairs=pairs)
        if scale != "raw":
            out["scale"] = scale
        return out
    kept = [(k, v) for k, v in values.items() if v is not None]
    pairs = [k for k, _ in kept] if "pairs" in m else None
    return _summary(np.array([v for _, v in kept], dtype=np.float64), None, pairs=pairs)


def _reported(report: dict[str, Any], m: dict[str, Any]) -> dict[str, Any]:
    """A {value, ci} record the study computed over its mazes, as a summary the verdict can read."""
    record, n = _get(report, m["path"]), _get(report, m["n"])
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
    }


def _on_scale(before: np.ndarray, after: np.ndarray, scale: str) -> np.ndarray:
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


def _summary(
    x: np.ndarray,
    p: float | None,
    paired: bool = False,
    what: str | None = None,
    pairs: list[tuple[int, int]] | None = None,
) -> dict[str, Any]:
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


def steerability(result: dict[str, Any] | None, criterion: dict[str, Any]) -> dict[str, Any] | None:
    """For a paired change: the fractions of mazes moved the claimed way, the opposite way and not at all (a
    change under UNMOVED), each with its Wilson interval. The claimed way is the criterion's side (above: up,
    below: down); a `within` claim claims no direction, so its mazes are counted up and down."""
    if result is None or not result.get("paired"):
        return None
    x = np.array(result["per_maze"], dtype=np.float64)
    up, down = int(np.sum(x > UNMOVED)), int(np.sum(x < -UNMOVED))
    n = len(x)
    claimed = "up" if "above" in criterion else "down" if "below" in criterion else None
    counts = {"up": up, "down": down}
    if claimed is None:
        moved = {"up": proportion(up, n), "down": proportion(down, n)}
    else:
        other = "down" if claimed == "up" else "up"
        moved = {"claimed_way": proportion(counts[claimed], n), "opposite_way": proportion(counts[other], n)}
    return {"claimed": claimed, **moved, "unmoved": proportion(n - up - down, n), "unmoved_below": UNMOVED}


def verdict(result: dict[str, Any], criterion: dict[str, Any]) -> str:
    """The one verdict rule (docs/statistics.md#verdicts), direction first:

    - vacuous: fewer than `min_n` mazes (default MIN_MAZES), or no interval;
    - holds / fails: the interval lies wholly on the claimed / the other side of the threshold, whatever its
      width (a `within` band: wholly inside / wholly outside it);
    - underpowered: the interval straddles the threshold (or a band's edge) and is wider than the stated
      `precision` (a band: or wider than the band itself, which it can then never fit inside);
    - inconclusive: it straddles, and is as narrow as the precision asks (or no precision is stated).

    The precision only keeps a straddling interval from being read as "no effect": a wide interval that already
    excludes the threshold decides the claim."""
    stat = criterion.get("statistic", "mean")
    ci = result.get(f"{stat}_ci")
    if result.get("n", 0) < criterion.get("min_n", MIN_MAZES) or ci is None:
        return "vacuous"
    low, high = ci
    precision = criterion.get("precision")
    wide = precision is not None and (high - low) / 2 > precision
    if "above" in criterion:
        if low > criterion["above"]:
            return "holds"
        if high <= criterion["above"]:
            return "fails"
    elif "below" in criterion:
        if high < criterion["below"]:
            return "holds"
        if low >= criterion["below"]:
            return "fails"
    else:
        lo, hi = criterion["within"]
        if lo <= low and high <= hi:
            return "holds"
        if high < lo or low > hi:
            return "fails"
        wide = wide or high - low > hi - lo
    return "underpowered" if wide else "inconclusive"


def underpowered_reason(ci: Sequence[float], criterion: dict[str, Any]) -> str:
    """Why a straddling interval is underpowered: its half-width against the precision (or a band's width)."""
    half = (ci[1] - ci[0]) / 2
    if criterion.get("precision") is not None and half > criterion["precision"]:
        return (
            f"the interval straddles the threshold and its half-width {half:.3f} is wider than the precision "
            f"{criterion['precision']:g}"
        )
    lo, hi = criterion["within"]
    return f"the interval ({2 * half:.3f} wide) is wider than the band [{lo:g}, {hi:g}], so it can never fit inside it"


def describe_criterion(c: dict[str, Any]) -> str:
    stat = c.get("statistic", "mean")
    if "above" in c:
        return f"95% CI of the {stat} above {c['above']:g}" + _precision_text(c)
    if "below" in c:
        return f"95% CI of the {stat} below {c['below']:g}" + _precision_text(c)
    return f"95% CI of the {stat} within [{c['within'][0]:g}, {c['within'][1]:g}]" + _precision_text(c)


def _precision_text(c: dict[str, Any]) -> str:
    return f", half-width at most {c['precision']:g}" if c.get("precision") is not None else ""


def steerability_text(st: dict[str, Any] | None) -> str:
    """ "moved the claimed way 0.91 [0.80, 0.96], the opposite way 0.02, unmoved 0.07 (n 53)", or "—"."""
    if st is None:
        return "—"

    def part(p: dict[str, Any], name: str, ci: bool = False) -> str:
        shown = fmt(p["fraction"], 2)
        return f"{name} {shown} [{p['ci'][0]:.2f}, {p['ci'][1]:.2f}]" if ci and p["ci"] else f"{name} {shown}"

    if st["claimed"] is None:
        moved = f"{part(st['up'], 'up')}, {part(st['down'], 'down')}"
    else:
        moved = f"{part(st['claimed_way'], 'claimed way', True)}, {part(st['opposite_way'], 'opposite')}"
    return f"{moved}, unmoved {fmt(st['unmoved']['fraction'], 2)} (n {st['unmoved']['n']})"


def _shown(result: dict[str, Any] | None, stat: str = "mean") -> str:
    if result is None:
        return "—"
    ci = result.get(f"{stat}_ci")
    interval = f" [{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else ""
    p = f", Wilcoxon p {result['wilcoxon_p']:.2g}" if result.get("wilcoxon_p") is not None else ""
    return f"{stat} {fmt(result.get(stat), 3)}{interval} (n {result.get('n', 0)}{p})"


def evaluate(claims: Sequence[Claim], out: Path) -> list[dict[str, Any]]:
    """Every claim's measurement, control, precondition and verdict, from the experiments' metrics.json."""
    names = {c.measure["experiment"] for c in claims} | {c.control["experiment"] for c in claims if c.control}
    names |= {c.precondition["measure"]["experiment"] for c in claims if c.precondition}
    names |= {c.measure["minus"]["experiment"] for c in claims if c.measure.get("kind") == "versus"}
    reports = {name: json.loads((out / name / "metrics.json").read_text()) for name in names}
    rows = []
    for claim in claims:
        stat = claim.criterion.get("statistic", "mean")
        result = measure(reports, claim.measure)
        got = verdict(result, claim.criterion)
        why = ""
        if claim.precondition is not None:
            pre = measure(reports, claim.precondition["measure"])
            if verdict(pre, claim.precondition["criterion"]) != "holds":
                got = "vacuous"
                why = (
                    f"precondition not met: {claim.precondition.get('reason', '')} "
                    f"({describe_criterion(claim.precondition['criterion'])}; measured "
                    f"{_shown(pre, claim.precondition['criterion'].get('statistic', 'mean'))})"
                )
        if got == "vacuous" and not why:
            why = f"fewer than {claim.criterion.get('min_n', MIN_MAZES)} mazes to measure"
        if got == "underpowered":
            why = underpowered_reason(result[f"{stat}_ci"], claim.criterion)
        control = measure(reports, claim.control) if claim.control else None
        steer_of = steerability(result, claim.criterion)
        control_steer = steerability(control, claim.criterion)
        rows.append(
            {
                "id": claim.id,
                "post": claim.post,
                "setting": claim.setting,
                "extra_setting": claim.extra,
                "criterion": describe_criterion(claim.criterion),
                "statistic": stat,
                "measured": result,
                "shown": _shown(result, stat),
                "control": control,
                "control_shown": _shown(control, stat) if control else "—",
                "steerability": steer_of,
                "steerability_shown": steerability_text(steer_of),
                "control_steerability": control_steer,
                "control_steerability_shown": steerability_text(control_steer),
                "mde": result.get("mde"),
                "verdict": got,
                "why": why,
                "expect": claim.expect,
                "as_expected": claim.expect is None or claim.expect == got,
                "figures": list(claim.figures),
            }
        )
    _add_holm(rows)
    return rows


SAMPLES = ("discovery", "replication")
SAMPLE_FIELDS = (
    "measured",
    "shown",
    "control",
    "control_shown",
    "steerability",
    "steerability_shown",
    "control_steerability",
    "control_steerability_shown",
    "mde",
    "wilcoxon_p_holm",
    "verdict",
    "why",
)


def combined_verdict(discovery: str, replication: str) -> tuple[str, str]:
    """One verdict from two samples: holds or fails only when both give it; does not replicate when one holds and
    the other fails; else the weaker of the two (vacuous, underpowered, inconclusive), saying which gave what."""
    if discovery == replication:
        return discovery, ""
    said = f"discovery {discovery}, replication {replication}"
    if {discovery, replication} == {"holds", "fails"}:
        return "does not replicate", said
    for weak in ("vacuous", "underpowered", "inconclusive"):
        if weak in (discovery, replication):
            return weak, said
    return "inconclusive", said


def replicated(discovery: list[dict[str, Any]], replication: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each claim's rows from the two samples as one: both samples side by side, the pooled estimate (every maze
    of both samples), and the combined verdict; `expect` is checked against the combined verdict."""
    out = []
    for d, r in zip(discovery, replication, strict=True):
        stat = d["statistic"]
        row = {k: v for k, v in d.items() if k not in SAMPLE_FIELDS}
        row["discovery"] = {k: d[k] for k in SAMPLE_FIELDS}
        row["replication"] = {k: r[k] for k in SAMPLE_FIELDS}
        pooled_values = np.array(d["measured"].get("per_maze", []) + r["measured"].get("per_maze", []))
        if len(pooled_values):
            pooled = _summary(pooled_values, None)
            pooled.pop("per_maze")
            row["pooled"] = {"measured": pooled, "shown": _shown(pooled, stat)}
        else:  # a reported number has no per-maze values to pool: each sample's own fit stands
            row["pooled"] = {"measured": None, "shown": "— (a reported number: each sample's own)"}
        verdict_, why = combined_verdict(d["verdict"], r["verdict"])
        reasons = [f"{name}: {x['why']}" for name, x in (("discovery", d), ("replication", r)) if x["why"]]
        row["verdict"], row["why"] = verdict_, "; ".join([why, *reasons]) if why else "; ".join(reasons)
        row["as_expected"] = d["expect"] is None or d["expect"] == verdict_
        # Where a reader of one sample's keys looks (the console, JUnit, the control column): both samples' texts,
        # and the discovery sample's numbers.
        row.update({k: d[k] for k in SAMPLE_FIELDS if k not in ("shown", "steerability_shown", "verdict", "why")})
        row["shown"] = f"discovery {d['shown']}; replication {r['shown']}"
        row["steerability_shown"] = f"discovery {d['steerability_shown']}; replication {r['steerability_shown']}"
        out.append(row)
    return out


def _add_holm(rows: list[dict[str, Any]]) -> None:
    """Holm-adjusted p-values over every claim of the batch that has a paired test: the family is the batch."""
    tested = [r for r in rows if r["measured"].get("wilcoxon_p") is not None]
    for r, p in zip(tested, holm([r["measured"]["wilcoxon_p"] for r in tested]), strict=True):
        r["wilcoxon_p_holm"] = p
    for r in rows:
        r.setdefault("wilcoxon_p_holm", None)


def multiplicity_text(rows: Sequence[dict[str, Any]]) -> str:
    """How many claims keep a paired-test p below 0.05 once adjusted for the whole batch (Holm)."""
    tested = [r for r in rows if r.get("wilcoxon_p_holm") is not None]
    kept = [r for r in tested if r["wilcoxon_p_holm"] < 0.05]
    holds = [r for r in tested if r["verdict"] == "holds"]
    kept_holds = [r for r in holds if r["wilcoxon_p_holm"] < 0.05]
    return (
        f"Multiplicity: {len(tested)} claims have a paired test (Wilcoxon); after Holm's adjustment over the batch "
        f"{len(kept)} keep p < 0.05 (family-wise 5%), and {len(kept_holds)} of the {len(holds)} that hold do."
    )


def two_samples(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether the rows were judged on a discovery and a replication sample (`replicated`)."""
    return bool(rows) and "replication" in rows[0]


def multiplicity_lines(rows: Sequence[dict[str, Any]]) -> list[str]:
    """`multiplicity_text` of the batch, or of each sample where the rows hold two."""
    if two_samples(rows):
        return [f"{n.capitalize()} sample. " + multiplicity_text([{**r, **r[n]} for r in rows]) for n in SAMPLES]
    return [multiplicity_text(rows)]


def measured_text(r: dict[str, Any]) -> str:
    """The measurement, its Holm-adjusted p where it has a paired test, and the minimum detectable effect."""
    extra = []
    if r.get("wilcoxon_p_holm") is not None:
        extra.append(f"Holm p {r['wilcoxon_p_holm']:.2g}")
    if r.get("mde") is not None:
        extra.append(f"detectable at this n: {r['mde']:.3f}")
    return r["shown"] + (f"; {'; '.join(extra)}" if extra else "")


def _verdict_cell(r: dict[str, Any]) -> str:
    text = f"**{r['verdict']}**" + (f" ({r['why']})" if r["why"] else "")
    if r.get("sample_factor", 1) > 1:
        text += f"; its experiments grown to {r['sample_factor']}x their mazes"
    return text + (f" — expected {r['expect']}" if not r["as_expected"] else "")


def _sample_cell(x: dict[str, Any]) -> str:
    """One sample's measurement, its Holm p and detectable effect, the mazes moved, and its own verdict."""
    return f"{measured_text(x)}; moved: {x['steerability_shown']}; *{x['verdict']}*"


def markdown(rows: Sequence[dict[str, Any]], header: str) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    two = two_samples(rows)
    names = ["claim (the post)", "setting", "criterion (set before the run)"]
    if two:
        names += ["discovery", "replication", "pooled", "control (discovery)", "verdict"]
    else:
        names += ["measured", "mazes moved (control)", "control", "verdict"]
    columns = "| " + " | ".join(names) + " |"
    lines = [header, "", columns, "|" + "---|" * len(names)]
    for r in rows:
        setting = ("*extra setting:* " if r["extra_setting"] else "") + r["setting"]
        figures = " ".join(f"[{Path(f).name}]({f})" for f in r["figures"])
        first = [f"{r['post']} `{r['id']}`", f"{setting} {figures}".strip(), r["criterion"]]
        if two:
            rest = [
                _sample_cell(r["discovery"]),
                _sample_cell(r["replication"]),
                r["pooled"]["shown"],
                r["control_shown"],
            ]
        else:
            moved = r["steerability_shown"]
            if r["control_steerability"] is not None:
                moved += f" (control: {r['control_steerability_shown']})"
            rest = [measured_text(r), moved, r["control_shown"]]
        lines.append("| " + " | ".join(cell(x) for x in [*first, *rest, _verdict_cell(r)]) + " |")
    counts = {v: sum(r["verdict"] == v for r in rows) for v in VERDICTS}
    lines += ["", "Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + "."]
    for line in multiplicity_lines(rows):
        lines += ["", line]
    return "\n".join(lines) + "\n"


def junit(rows: Sequence[dict[str, Any]], name: str) -> bytes:
    """One JUnit test case per claim: a failure where the verdict is not the expected one."""
    suite = ET.Element(
        "testsuite", name=name, tests=str(len(rows)), failures=str(sum(not r["as_expected"] for r in rows))
    )
    for r in rows:
        case = ET.SubElement(suite, "testcase", classname=name, name=r["id"])
        if not r["as_expected"]:
            failure = ET.SubElement(case, "failure", message=f"verdict {r['verdict']}, expected {r['expect']}")
            failure.text = f"{r['post']}\n{r['criterion']}: {r['shown']}\n{r['why']}".strip()
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)
