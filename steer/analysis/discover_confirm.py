"""`steer discover`'s confirm stage: each chosen claim judged on two samples the screen never saw. A module of its
own (beside `steer.analysis.discover`, whose effects and records it reads) because its verdicts are the
search's findings, decided by rules stated before the run (`Settings`), never by the screen's numbers.

The confirm stage measures each chosen claim again on mazes the screen never saw: the effect e = sign × change
per maze, the same for a norm-matched random vector at the same layer and coefficient (c), and for the
unrelated-maze null (the floor). On a sample the candidate

- holds when the 95% BCa interval of mean(e − c) lies above the margin, the interval of mean(e) lies above the
  floor (the mean |change| the null moves the same quantity by), and the policy does not crumble at the
  candidate's coefficient (mean wall mass or entropy rising by more than the thresholds);
- fails when the interval of mean(e − c) lies at or below the margin, or it clears the margin but not the
  floor, or the policy crumbles; inconclusive when the interval straddles the margin; underpowered when it
  straddles the margin and its half-width is wider than the precision (direction first: an interval wholly on
  one side of the margin decides whatever its width, `steer.analysis.verdicts.verdict`); vacuous below 5 mazes.

It is found when it holds on both samples (`steer.analysis.verdicts.combined_verdict`), and its Holm-adjusted
Wilcoxon p of e against c stays below 0.05 on both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steer.analysis.claims import steerability
from steer.analysis.discover import Settings, interval_summary, mean_or_none
from steer.analysis.stats import holm, min_detectable_effect, wilcoxon_p
from steer.analysis.verdicts import MIN_MAZES, SAMPLES, combined_verdict, verdict


def _half(ci: Sequence[float] | None) -> float:
    return 0.0 if ci is None else (ci[1] - ci[0]) / 2


def judge_sample(rows: Sequence[Mapping[str, Any]], primary: str, sign: int, settings: Settings) -> dict[str, Any]:
    """One candidate on one sample: `rows` are its per-maze records {own, control, floor, transfer, crumble}."""
    keep = [r for r in rows if r["own"].get(primary) is not None and r["control"].get(primary) is not None]
    e = np.array([sign * r["own"][primary] for r in keep], dtype=np.float64)
    c = np.array([sign * r["control"][primary] for r in keep], dtype=np.float64)
    d = e - c
    floor_values = [abs(r["floor"][primary]) for r in keep if r.get("floor") and r["floor"].get(primary) is not None]
    floor = float(np.mean(floor_values)) if floor_values else 0.0
    transfer = np.array(
        [sign * r["transfer"][primary] for r in keep if r.get("transfer") and r["transfer"].get(primary) is not None],
        dtype=np.float64,
    )
    effect, control, versus = interval_summary(e), interval_summary(c), interval_summary(d)
    means = {
        name: mean_or_none([r["own"].get(name) for r in rows])
        for name in ("mean_steps", "mean_tv", "wall_mass", "entropy")
    }
    crumbles = bool(
        (means["wall_mass"] or 0.0) > settings.crumble_wall or (means["entropy"] or 0.0) > settings.crumble_entropy
    )
    state = verdict(versus, {"above": settings.margin, "precision": settings.precision})
    why = {
        "holds": None,
        "fails": f"the effect does not exceed the random control's by {settings.margin:g}",
        "inconclusive": f"the interval of effect − control straddles the margin {settings.margin:g}",
        "underpowered": f"the interval of effect − control straddles the margin {settings.margin:g} and its "
        f"half-width {_half(versus['mean_ci']):.3f} is wider than the precision {settings.precision:g}",
        "vacuous": f"fewer than {MIN_MAZES} mazes to measure",
    }[state]
    if state == "holds" and (effect["mean_ci"] is None or effect["mean_ci"][0] <= floor):
        state, why = "fails", f"the effect does not clear the unrelated-maze null floor ({floor:.3f})"
    if state != "vacuous" and crumbles:
        state, why = "fails", "the policy crumbles at this coefficient (wall mass or entropy rises past the threshold)"
    return {
        "n": len(keep),
        "effect": effect,
        "control": control,
        "effect_minus_control": {**versus, "wilcoxon_p": wilcoxon_p(e, c), "detectable": min_detectable_effect(d)},
        "floor": floor,
        "transfer": interval_summary(transfer) if len(transfer) else None,
        "steerability": steerability({"paired": True, "per_maze": list(e)}, {"above": 0}),
        "means": means,
        "crumbles": crumbles,
        "verdict": state,
        "why": why,
    }


def crumble_coefficient(ladder: Sequence[Mapping[str, Any]], settings: Settings) -> float | None:
    """The smallest coefficient (by size) of the ladder where the mean rise of wall mass or entropy over mazes
    passes its threshold; None when none does. `ladder`: per maze, {coefficient: {wall_mass, entropy}}."""
    if not ladder:
        return None
    coeffs = sorted({float(c) for m in ladder for c in m}, key=abs)
    for coeff in coeffs:
        rows = [m[str(coeff)] if str(coeff) in m else m.get(coeff) for m in ladder]
        rows = [r for r in rows if r is not None]
        wall = mean_or_none([r["wall_mass"] for r in rows]) or 0.0
        ent = mean_or_none([r["entropy"] for r in rows]) or 0.0
        if wall > settings.crumble_wall or ent > settings.crumble_entropy:
            return coeff
    return None


def final_verdicts(judged: list[dict[str, Any]], settings: Settings) -> None:
    """Holm over the candidates on each sample, then one verdict from both samples (in place)."""
    for sample in SAMPLES:
        ps = [(i, j[sample]["effect_minus_control"]["wilcoxon_p"]) for i, j in enumerate(judged)]
        have = [(i, p) for i, p in ps if p is not None]
        adjusted = holm([p for _, p in have])
        for j in judged:
            j[sample]["holm_p"] = None
        for (i, _), q in zip(have, adjusted, strict=True):
            judged[i][sample]["holm_p"] = q
    for j in judged:
        d, r = j["discovery"], j["replication"]
        state, said = combined_verdict(d["verdict"], r["verdict"])
        holm_ok = all((j[s]["holm_p"] is not None and j[s]["holm_p"] < settings.alpha) for s in SAMPLES)
        if state == "holds" and not holm_ok:
            state, said = "inconclusive", "holds on both samples, but not after Holm's adjustment over the candidates"
        j["verdict"] = state
        j["verdict_said"] = said
        reasons = [f"{s}: {j[s]['why']}" for s in SAMPLES if j[s]["why"]]
        j["why"] = "; ".join(reasons) if state != "holds" else None
        j["status"] = "found" if state == "holds" else state


__all__ = ["crumble_coefficient", "final_verdicts", "judge_sample"]
