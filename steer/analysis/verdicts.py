"""The one verdict rule: a claim's criterion against its 95% interval, on one sample and on two.

A criterion is one of `{above: t}`, `{below: t}` or `{within: [lo, hi]}` on the mean or the median, with an
optional `precision` (the largest 95% half-width that can tell "no effect" from a small one). Direction comes
first:

- holds:        the interval lies wholly on the claimed side of the threshold (wholly inside a band), whatever
                its width;
- fails:        it lies wholly on the other side (wholly outside a band), whatever its width;
- underpowered: it straddles the threshold (a band's edge) and is wider than the precision, or, for a band,
                wider than the band itself, which it can then never fit inside;
- inconclusive: it straddles and is as narrow as the precision asks (or none is stated);
- vacuous:      fewer than `min_n` mazes (MIN_MAZES), no interval, or an unmet precondition.

A claim must be able to fail at its null (`holds_at`): the engine refuses, when the batch is read, a claim whose
criterion already holds at the value its measure takes with no effect (steer.analysis.claims.null_value).

docs/statistics.md#verdicts states the rule; tests/test_verdicts.py tests every branch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from steer.analysis.claim_types import Criterion, Summary

VERDICTS = ("holds", "fails", "does not replicate", "inconclusive", "underpowered", "vacuous")
MIN_MAZES = 5
SAMPLES = ("discovery", "replication")


def verdict(result: Summary, criterion: Criterion) -> str:
    """holds / fails / underpowered / inconclusive / vacuous from the interval of the criterion's statistic in
    `result` (a summary with n and `<statistic>_ci`), by the rule in the module docstring."""
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


def holds_at(point: float, criterion: Criterion) -> bool:
    """Whether the criterion holds for an interval shrunk to one point: at the measure's null, a claim that
    holds there cannot fail."""
    return verdict(
        {"n": MIN_MAZES, "mean": point, "mean_ci": [point, point], "median_ci": [point, point]}, criterion
    ) == ("holds")


def underpowered_reason(ci: Sequence[float], criterion: Criterion) -> str:
    """Why a straddling interval is underpowered: its half-width against the precision (or a band's width)."""
    half = (ci[1] - ci[0]) / 2
    if criterion.get("precision") is not None and half > criterion["precision"]:
        return (
            f"the interval straddles the threshold and its half-width {half:.3f} is wider than the precision "
            f"{criterion['precision']:g}"
        )
    lo, hi = criterion["within"]
    return f"the interval ({2 * half:.3f} wide) is wider than the band [{lo:g}, {hi:g}], so it can never fit inside it"


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


def describe_criterion(c: Criterion) -> str:
    stat = c.get("statistic", "mean")
    precision = f", half-width at most {c['precision']:g}" if c.get("precision") is not None else ""
    if "above" in c:
        return f"95% CI of the {stat} above {c['above']:g}{precision}"
    if "below" in c:
        return f"95% CI of the {stat} below {c['below']:g}{precision}"
    return f"95% CI of the {stat} within [{c['within'][0]:g}, {c['within'][1]:g}]{precision}"


_DESCRIBED = re.compile(
    r"95% CI of the (?P<stat>mean|median) (?:(?P<side>above|below) (?P<t>\S+?)|within \[(?P<lo>\S+), (?P<hi>\S+)\])"
    r"(?:, half-width at most (?P<precision>\S+))?"
)


def criterion_of(text: str) -> Criterion | None:
    """The criterion `describe_criterion` wrote as `text` (a claims.json row's `criterion`), or None for any other
    text: a claims chart reads its thresholds back from the rows a batch wrote, the committed ones included."""
    m = _DESCRIBED.fullmatch(text)
    if m is None:
        return None
    c: Criterion = {"statistic": m["stat"]}
    if m["side"]:
        c[m["side"]] = float(m["t"])  # type: ignore[literal-required]
    else:
        c["within"] = [float(m["lo"]), float(m["hi"])]
    if m["precision"]:
        c["precision"] = float(m["precision"])
    return c
