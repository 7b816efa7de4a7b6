"""Claims as a batch file states them: parsed, checked against the batch's experiments, and refused when one
could not fail at its null (steer/analysis/claims.py judges them).

    - id: cheese-subtract
      post: "…the post's sentence…"
      setting: "each maze's own cheese vector × −1 at block2.res1.resadd_out, seeds 0–99 (the post's)"
      measure: {experiment: cheese-100, metric: p_cheese_ds, kind: change}
      criterion: {statistic: mean, below: -0.3, precision: 0.15}
      control: {experiment: cheese-100, metric: p_cheese_ds, kind: change, source: controls.random}
      control_role: control       # judged as the change minus the control's, maze by maze (the default);
                                  # `reference`: the control is only shown beside the claim
      precondition: {measure: {…}, criterion: {…}, reason: "the agent pursues the cheese"}
      sanity: false               # true: a check that the instrument works, reported apart, never a finding
      expect: holds

**Every claim can fail.** When the batch is read, each claim's criterion is evaluated at its measure's null
(`null_value`: no change for a change, versus, contrast or trend; the control's value when judged against a
control; for a value or a reported number, the `no_effect:` value it states, 0 by default for a reported
number). A claim whose criterion holds there cannot fail, so it is refused as a finding unless it is marked
`sanity: true`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from steer.analysis.claim_measures import KINDS, SCALES
from steer.analysis.claim_types import Criterion, Measure
from steer.analysis.verdicts import VERDICTS, describe_criterion, holds_at
from steer.errors import SteerError, excerpt

CONTROL_ROLES = ("control", "reference")


@dataclass(frozen=True)
class Claim:
    id: str
    post: str
    setting: str
    measure: Measure
    criterion: Criterion
    control: Measure | None = None
    precondition: dict[str, Any] | None = None
    expect: str | None = None
    figures: tuple[str, ...] = ()
    extra: bool = False  # a second setting, not the post's own: labelled as such
    control_role: str = "control"  # control: judged as measure − control per maze; reference: only shown
    sanity: bool = False  # a check that the instrument works: its own section, never a finding

    @property
    def against_control(self) -> bool:
        return self.control is not None and self.control_role == "control"


_CLAIM_KEYS = (
    "id",
    "post",
    "setting",
    "measure",
    "criterion",
    "control",
    "control_role",
    "precondition",
    "sanity",
    "expect",
    "figures",
    "extra",
)


def parse_claims(value: Any, experiments: Sequence[str]) -> tuple[Claim, ...]:
    """The `claims:` of a batch file, checked against its experiment names, and each able to fail at its null,
    before anything runs."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise SteerError(f"claims: expected a list of claims, got {excerpt(value)}.")
    out = tuple(_claim(item, f"claims[{i}]", experiments) for i, item in enumerate(value))
    ids = [c.id for c in out]
    if len(set(ids)) < len(ids):
        raise SteerError("claims: two claims share an id; give each its own.")
    return out


def _claim(item: Any, where: str, experiments: Sequence[str]) -> Claim:
    """One claim: its keys, measures and criteria checked, then whether its control can be subtracted maze by
    maze and whether it can fail at its null."""
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
    role = item.get("control_role", "control")
    if role not in CONTROL_ROLES:
        raise SteerError(
            f"{where}.control_role: {excerpt(role)} is not one of {', '.join(CONTROL_ROLES)} (control: the claim "
            "is judged on the measure minus the control, maze by maze; reference: the control is only shown)."
        )
    for flag in ("sanity", "extra"):
        if not isinstance(item.get(flag, False), bool):
            raise SteerError(f"{where}.{flag}: expected true or false, got {excerpt(item[flag])}.")
    claim = Claim(
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
        role,
        bool(item.get("sanity", False)),
    )
    if claim.against_control:
        _check_pairable(claim, where)
    _check_can_fail(claim, where)
    return claim


def _check_measure(m: Any, where: str, experiments: Sequence[str]) -> None:
    if not isinstance(m, dict):
        raise SteerError(f"{where}: expected a mapping with experiment, metric and kind.")
    if m.get("experiment") not in experiments:
        raise SteerError(f"{where}.experiment: {excerpt(m.get('experiment'))} is not an experiment of this batch.")
    kind = m.get("kind", "change")
    if kind not in KINDS:
        raise SteerError(f"{where}.kind: {excerpt(kind)} is not one of {', '.join(KINDS)}.")
    null = m.get("no_effect")
    if null is not None and (kind not in ("value", "reported") or not _number(null)):
        raise SteerError(
            f"{where}.no_effect: {excerpt(null)}: the value a measure takes with no effect (its null) is stated for a "
            "value or a reported number, as a number; a change, versus, contrast or trend has the null 0 by "
            "construction."
        )
    if kind == "reported":
        for key in ("path", "n"):
            if not isinstance(m.get(key), str):
                raise SteerError(
                    f"{where}.{key}: missing; a reported measure names the dotted path of a {{value, ci}} record in "
                    "the experiment's metrics.json (path:) and of its number of mazes (n:)."
                )
        return
    if not isinstance(m.get("metric"), str):
        raise SteerError(f"{where}.metric: missing; name a metric such as p_cheese_ds.")
    if kind == "versus":
        if ("minus" in m) == ("plus" in m):
            raise SteerError(
                f"{where}: a versus measure names one other measure, as minus: (this − that, per maze) or plus: "
                "(this + that, e.g. adding a vector's change and subtracting it: 0 when the response is symmetric)."
            )
        _check_measure(m.get("minus") or m.get("plus"), f"{where}.{'minus' if 'minus' in m else 'plus'}", experiments)
    if kind == "contrast":
        _check_measure(m.get("minus"), f"{where}.minus", experiments)
    if kind == "trend" and not (isinstance(m.get("coeffs"), list) and len(m["coeffs"]) >= 2):
        raise SteerError(f"{where}.coeffs: a trend needs at least two coefficients of the sweep, e.g. [0.5, 1, 2].")
    if m.get("scale", "raw") not in SCALES:
        raise SteerError(f"{where}.scale: {excerpt(m.get('scale'))} is not one of {', '.join(SCALES)}.")
    if m.get("scale", "raw") != "raw" and (kind not in ("change", "versus", "contrast") or m.get("side")):
        raise SteerError(
            f"{where}.scale: a scale applies to a change (patched − original of a field metric), not to kind {kind}"
            + (" with a side" if m.get("side") else "")
            + "."
        )


def _number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and bool(np.isfinite(x))


def _check_criterion(c: Any, where: str) -> None:
    if not isinstance(c, dict) or sum(k in c for k in ("above", "below", "within")) != 1:
        raise SteerError(
            f"{where}: expected one of {{above: x}}, {{below: x}}, {{within: [lo, hi]}}, "
            "with an optional statistic: mean | median."
        )
    if c.get("statistic", "mean") not in ("mean", "median"):
        raise SteerError(f"{where}.statistic: use mean or median.")
    band = c.get("within")
    if band is not None and not (isinstance(band, list) and len(band) == 2 and all(map(_number, band))):
        raise SteerError(f"{where}.within: {excerpt(band)} is not a band [lo, hi] of two numbers.")
    precision = c.get("precision")
    if precision is not None and (not _number(precision) or precision <= 0):
        raise SteerError(
            f"{where}.precision: {excerpt(precision)} is not a positive number; give the largest 95% interval "
            "half-width that can decide the claim, e.g. precision: 0.05."
        )


# The keys that choose which mazes a measure reads: a control judged against the measure must read the same ones.
_MAZE_KEYS = ("experiment", "where", "pairs", "coeff", "layer")


def _check_pairable(claim: Claim, where: str) -> None:
    m, c = claim.measure, claim.control
    assert c is not None
    kinds = (m.get("kind", "change"), c.get("kind", "change"))
    differs = [k for k in _MAZE_KEYS if m.get(k) != c.get(k)]
    if any(k not in ("change", "value") for k in kinds) or differs:
        what = f"it reads other mazes ({', '.join(differs)} differ)" if differs else f"a {kinds[0]} measure"
        raise SteerError(
            f"{where}.control: the claim is judged on the measure minus its control, maze by maze, but {what}, so "
            "the two cannot be subtracted maze by maze. Say control_role: reference to show the control beside the "
            "claim only, or compare two groups of mazes with kind: contrast."
        )


def null_value(claim: Claim) -> float:
    """What the judged quantity is when the thing claimed has no effect: 0 for a change, versus, contrast or
    trend, and for a measure judged against its control; a value's or a reported number's stated `no_effect:`
    (a reported number, a coefficient or a gain, defaults to 0). Refused when a value states none."""
    return measure_null(claim.measure, claim.against_control, claim.id)


def measure_null(m: dict[str, Any], against_control: bool, claim_id: str) -> float:
    """`null_value` of one measure (a claim's, or its precondition's, never judged against a control)."""
    kind = m.get("kind", "change")
    if against_control or kind in ("change", "versus", "contrast", "trend"):
        return 0.0
    if m.get("no_effect") is not None:
        return float(m["no_effect"])
    if kind == "reported":
        return 0.0
    raise SteerError(
        f"claim {claim_id!r}: measure: a value of {m.get('metric')!r} has no null the engine can check the claim "
        "against; state it (no_effect: the value with no effect, e.g. no_effect: 0 for a distance gained) or judge "
        "the value against a control, so that the claim can fail."
    )


def _check_can_fail(claim: Claim, where: str) -> None:
    null = null_value(claim)
    if claim.sanity or not holds_at(null, claim.criterion):
        return
    pre = claim.precondition
    if pre is not None and not holds_at(measure_null(pre["measure"], False, claim.id), pre["criterion"]):
        # With no effect the precondition fails and the claim is vacuous, never holds: e.g. "few mazes move the
        # wrong way" (0 with no effect), given that most move the claimed way (not so with no effect).
        return
    raise SteerError(
        f"{where} ({claim.id}): its criterion ({describe_criterion(claim.criterion)}) already holds at the measure's "
        f"null ({null:g}, what it measures when there is no effect), so the claim cannot fail and is no finding. "
        "State it against a reference the post contrasts it with (kind: versus, e.g. adding a vector against "
        "subtracting it, or kind: contrast between two groups of mazes), against a null it must leave, or with a "
        "precondition that fails at its own null (e.g. that most mazes move the claimed way), or mark it "
        "sanity: true to report it as a check that the instrument works."
    )


def experiments_of(claim: Claim) -> set[str]:
    """The experiments a claim reads: its measure's (and a versus' or contrast's other one), its control's and its
    precondition's."""
    names = set()
    for m in (claim.measure, claim.control, claim.precondition and claim.precondition["measure"]):
        while isinstance(m, dict):
            names.add(m["experiment"])
            m = m.get("minus") or m.get("plus")
    return names


__all__ = ["CONTROL_ROLES", "Claim", "experiments_of", "null_value", "parse_claims"]
