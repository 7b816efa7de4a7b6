"""Scoring a search for X-vectors (`steer discover`): exact behavioural effects per candidate, against a random
control and a null floor, the choice of the top k, and the verdicts on two samples.

A candidate is a family of paired maze edits (`steer.maze.families`) at one layer and coefficient, applied to
mazes with the cheese kept or removed. On each maze it is each maze's own vector (activations(a) −
activations(b) of the family's pair on that maze). Its effects are exact (the chain of `steer.analysis.chain`):

- `p_reach_cheese` and `mean_steps` (the registry's behaviour metrics), `p_visit_<region>`, P(the episode
  visits a square of each corner region or the centre; `steer.maze.families.regions`), and `time_in_<region>`,
  the share of the episode's expected steps spent in the region (P(visit) saturates where the unpatched agent
  goes there anyway, as it does to the top-right once the cheese is removed); patched − original;
- `mean_tv` (the registry's), and the crumble signals `wall_mass` and `entropy` (the registry's field metrics, of
  the patched policy in the maze's own facing), patched − original.

The screen ranks candidates by their largest mean |change − the random control's change| of a probability or
share (P(reach the cheese), P(visit a region), the share of time in a region) less the same for the null floor
(an unrelated maze's vector scaled to the candidate's norm); that effect, with its sign, becomes the
candidate's claim. Beside the score each candidate gets the 95% BCa interval over the screen's mazes of its
per-maze (change − control) on that effect, in the claimed direction, and the smallest effect that n detects
with 80% power (`steer.analysis.stats.min_detectable_effect`). The screen is optimistic by construction (the
effect and its sign are picked on the same mazes), so its interval only chooses what goes on, never a verdict.
The top k families by their best candidate go on to be confirmed, and so does every family whose best
candidate's screen interval lies wholly above the margin (`choose`); every family, confirmed or not, gets a
plain statement of what the search says of it at the power it had (`family_table`): not finding a family's
effect at the screen's n is not its absence.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from steer.analysis.chain import Behaviour
from steer.analysis.claims import UNMOVED, steerability
from steer.analysis.metrics import BEHAVIOUR_METRICS, FIELD_METRICS
from steer.analysis.stats import bca_intervals, holm, min_detectable_effect, wilcoxon_p
from steer.analysis.verdicts import MIN_MAZES, SAMPLES, combined_verdict, verdict
from steer.maze.env import MazeRenderer
from steer.maze.families import FAMILIES, REGIONS, TARGETS, Pair
from steer.net.policy import ImpalaPolicy, obs_to_tensor
from steer.net.vfield import FacingField, VectorField

PROBABILITIES = ("p_reach_cheese", *(f"p_visit_{r}" for r in REGIONS), *(f"time_in_{r}" for r in REGIONS))
EFFECTS = (*PROBABILITIES, "mean_steps", "mean_tv", "wall_mass", "entropy")
LABELS = {
    "p_reach_cheese": "P(reach the cheese)",
    **{f"p_visit_{r}": f"P(visit the {r.replace('_', '-')} region)" for r in REGIONS},
    **{f"time_in_{r}": f"share of the episode in the {r.replace('_', '-')} region" for r in REGIONS},
    "mean_steps": "expected episode length",
    "mean_tv": "mean TV from original",
    "wall_mass": "P(move into a wall)",
    "entropy": "action entropy (nats)",
}
# The families whose pair is a known vector's own (the cheese vector's, the top-right vector's): found, they are
# rediscoveries, whatever the layer or coefficient.
KNOWN_FAMILIES = ("cheese_at:own", "path:top_right")


@dataclass(frozen=True, order=True)
class Candidate:
    family: str
    layer: str
    coeff: float
    target: str = "keep"

    @property
    def key(self) -> str:
        return f"{self.family} @ {self.layer} x {self.coeff:g}" + (
            " (cheese removed)" if self.target == "remove" else ""
        )

    def to_json(self) -> dict[str, Any]:
        return {"family": self.family, "layer": self.layer, "coeff": self.coeff, "target": self.target}


@dataclass(frozen=True)
class Settings:
    """What the verdicts are judged by, stated in the spec before the run."""

    margin: float = 0.05  # the effect must exceed the random control's by this much (probability)
    precision: float = 0.1  # the largest 95% half-width that can decide a candidate
    crumble_wall: float = 0.1  # mean rise of P(move into a wall) that counts as crumbling
    crumble_entropy: float = 0.5  # mean rise of the action entropy (nats) that counts as crumbling
    alpha: float = 0.05  # family-wise level of the Holm adjustment over candidates


# -- vectors --------------------------------------------------------------------------------------------


def pair_vectors(
    policy: ImpalaPolicy, renderer: MazeRenderer, pairs: Sequence[Pair], layers: Sequence[str]
) -> list[dict[str, torch.Tensor]]:
    """activations(a) − activations(b) of each pair at each layer, one forward pass for all (a zero vector where the
    pair's two mazes are the same: the null must be measured, not refused)."""
    if not pairs:
        return []
    sites = [policy.resolve(layer) for layer in layers]
    deepest = max(sites, key=policy.site_index)
    states = [m.to_bytes() for p in pairs for m in (p.a, p.b)]
    obs = obs_to_tensor(renderer.observe_many(states), next(policy.parameters()).device)
    with torch.inference_mode():
        acts = policy.run({"input": obs}, stop=deepest, keep=frozenset(sites))
    return [
        {layer: (acts[site][2 * i] - acts[site][2 * i + 1]).clone() for layer, site in zip(layers, sites, strict=True)}
        for i in range(len(pairs))
    ]


# -- effects on one maze --------------------------------------------------------------------------------


def facing_slice(field: FacingField) -> VectorField:
    """The policy in the maze's own facing (0 for a level as generated), as the registry's field metrics read it."""
    return VectorField(field.maze, field.positions, field.probs[field.maze.facing])


def behaviour_numbers(b: Behaviour, squares: Mapping[str, Sequence[Any]]) -> dict[str, float | None]:
    """The exact episode numbers of one policy: P(reach the cheese), P(visit) each region (`b.p_regions`) and the
    share of the episode's expected steps spent in it (its squares' expected visits over the expected length)."""
    steps = BEHAVIOUR_METRICS["mean_steps"].unpatched(b)
    return {
        "p_reach_cheese": BEHAVIOUR_METRICS["p_reach_cheese"].unpatched(b) if b.cheese is not None else None,
        **{f"p_visit_{r}": b.p_regions.get(r) for r in REGIONS},
        **{
            f"time_in_{r}": float(sum(b.occupancy[sq] for sq in squares[r]) / steps) if steps else None for r in REGIONS
        },
        "mean_steps": steps,
    }


def field_numbers(field: VectorField) -> dict[str, float | None]:
    return {name: FIELD_METRICS[name].unpatched(field) for name in ("wall_mass", "entropy")}


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def changes(
    before: Mapping[str, float | None],
    after: Mapping[str, float | None],
    original: VectorField | None = None,
    patched: VectorField | None = None,
) -> dict[str, float | None]:
    """Patched − original of every effect (the numbers of `behaviour_numbers` and `field_numbers`), and mean TV."""
    out = {name: _minus(after.get(name), before.get(name)) for name in EFFECTS if name != "mean_tv"}
    if original is not None and patched is not None:
        out["mean_tv"] = FIELD_METRICS["mean_tv"].compute(original, patched)
    return {name: out.get(name) for name in EFFECTS}


def crumble_numbers(before: VectorField, after: VectorField) -> dict[str, float | None]:
    b, a = field_numbers(before), field_numbers(after)
    return {name: _minus(a[name], b[name]) for name in b}


# -- the screen ---------------------------------------------------------------------------------------


def _mean(values: Sequence[float | None]) -> float | None:
    x = [v for v in values if v is not None]
    return float(np.mean(x)) if x else None


def _beyond_control(have: Sequence[Mapping[str, Any]], key: str, what: str) -> dict[str, float | None]:
    """Mean over mazes of `what`'s change (a candidate's own, or its floor's) minus its random control's."""
    pairs = [(m.get(what, {}).get(key), m["controls"][key]) for m in have]
    return {name: _mean([_minus(x[name], c[name]) for x, c in pairs if x is not None]) for name in PROBABILITIES}


def _signed_beyond(have: Sequence[Mapping[str, Any]], key: str, primary: str, sign: int) -> np.ndarray:
    """Per maze, sign × (the candidate's change − its random control's) of `primary`: the screen's effect in its
    claimed direction, maze by maze (the values its interval and its detectable effect are of)."""
    d = [_minus(m["effects"][key].get(primary), m["controls"][key].get(primary)) for m in have]
    return np.array([sign * v for v in d if v is not None], dtype=np.float64)


def screen_table(candidates: Sequence[Candidate], mazes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per candidate: its mean change of every effect over the screen's mazes where the family has a member; per
    probability or share, its mean change beyond its random control (`beyond`) and the unrelated-maze floor's
    (`floor`: the other maze's vector scaled to the candidate's norm, beyond the same control); its score, the
    largest |beyond| − |floor| (what the confirm stage asks of it: clear the control and the floor), and that
    effect with the sign of its change beyond the control (its claim); the 95% BCa interval over mazes of that
    effect beyond the control in the claimed direction (`screen_interval`, what `choose` reads) and the smallest
    effect its n detects with 80% power (`detectable`)."""
    rows = []
    for cand in candidates:
        have = [m for m in mazes if m["effects"].get(cand.key) is not None]
        per = [m["effects"][cand.key] for m in have]
        means = {name: _mean([p[name] for p in per]) for name in EFFECTS}

        beyond, floor = _beyond_control(have, cand.key, "effects"), _beyond_control(have, cand.key, "floors")
        specific = {name: abs(v) - abs(floor[name] or 0.0) for name, v in beyond.items() if v is not None}
        score, primary = max(((v, k) for k, v in specific.items()), default=(0.0, None))
        sign = None if primary is None or not beyond[primary] else (1 if beyond[primary] > 0 else -1)
        d = _signed_beyond(have, cand.key, primary, sign) if primary is not None and sign is not None else None
        rows.append(
            {
                **cand.to_json(),
                "candidate": cand.key,
                "mazes": len(per),
                "mean_change": means,
                "mean_change_beyond_control": beyond,
                "floor_beyond_control": floor,
                "score": score,
                "primary": primary,
                "sign": sign,
                "screen_interval": None if d is None else interval_summary(d),
                "detectable": None if d is None else min_detectable_effect(d),
            }
        )
    return rows


def _interval_text(summary: Mapping[str, Any] | None) -> str:
    """'[+0.120, +0.410] (n 16)' of a summary in the claimed direction; 'no interval (n 1)' without one."""
    if summary is None:
        return "no interval (n 0)"
    ci = summary["mean_ci"]
    shown = "no interval" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return f"{shown} (n {summary['n']})"


def clears_margin(row: Mapping[str, Any], margin: float) -> bool:
    """Whether a screened candidate's interval of (change − control), in its claimed direction, lies wholly above
    the margin: the one verdict rule (`steer.analysis.verdicts.verdict`), so fewer than 5 mazes never do."""
    summary = row.get("screen_interval")
    return summary is not None and verdict(summary, {"above": margin}) == "holds"


def choose(rows: Sequence[dict[str, Any]], top_k: int, exclude: Sequence[str], margin: float) -> list[dict[str, Any]]:
    """The candidates the confirm stage judges, one per family (its best by score, ties by name): the families'
    top k by that score, then every other family whose best candidate's screen interval lies wholly above the
    margin (`clears_margin`: a screen that already excludes the margin must not be cut off by the top k), in
    rank order. The nulls (`exclude`) are never chosen. Every row gets the reason it was or was not chosen
    (`screen`); each family's best row gets its family's rank (`rank`; None on every other row)."""
    best: dict[str, dict[str, Any]] = {}
    for row in rows:
        row["rank"] = None
        if row["family"] in exclude or row["primary"] is None or row["sign"] is None:
            continue
        have = best.get(row["family"])
        if have is None or (row["score"], have["candidate"]) > (have["score"], row["candidate"]):
            best[row["family"]] = row
    ranked = sorted(best.values(), key=lambda r: (-r["score"], r["candidate"]))
    for rank, row in enumerate(ranked, start=1):
        row["rank"] = rank
    top = ranked[:top_k]
    beyond = [r for r in ranked[top_k:] if clears_margin(r, margin)]
    cut = top[-1]["score"] if len(top) == top_k else None
    keys = {r["candidate"] for r in top}
    extra = {r["candidate"] for r in beyond}
    families = len(ranked)
    for row in rows:
        iv = _interval_text(row.get("screen_interval"))
        if row["candidate"] in keys:
            row["screen"] = f"chosen: rank {row['rank']} of {families} families, within the top {top_k}"
        elif row["candidate"] in extra:
            row["screen"] = (
                f"chosen: rank {row['rank']} of {families} families, beyond the top {top_k}, because its screen "
                f"interval of change − control in its claimed direction {iv} lies wholly above the margin {margin:g}"
            )
        elif row["family"] in exclude:
            row["screen"] = "null family: measured beside every candidate, never chosen"
        elif row["primary"] is None or row["sign"] is None:
            row["screen"] = "rejected: no effect to measure (the family had no member on the screen's mazes)"
        elif best.get(row["family"]) is not row:
            row["screen"] = f"rejected: not its family's best candidate ({best[row['family']]['candidate']})"
        else:
            n = (row.get("screen_interval") or {}).get("n", 0)
            decides = (
                f"does not lie wholly above the margin {margin:g}"
                if n >= MIN_MAZES
                else f"cannot clear the margin at n {n} (fewer than {MIN_MAZES} mazes)"
            )
            row["screen"] = (
                f"rejected: rank {row['rank']} of {families} families, score {row['score']:.3f} below the top "
                f"{top_k}'s cut ({cut:.3f}), and its screen interval of change − control in its claimed direction {iv} "
                f"{decides}"
            )
    return top + beyond


def screen_families(
    rows: Sequence[Mapping[str, Any]], chosen: Sequence[Mapping[str, Any]], exclude: Sequence[str]
) -> list[dict[str, Any]]:
    """Per searched family (the nulls left out), after `choose`: its rank, its best candidate, whether it goes on
    to be confirmed and why (its best row's reason), best-ranked first; families with nothing to rank last."""
    picked = {r["candidate"] for r in chosen}
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = row["family"]
        if name in exclude:
            continue
        entry = out.setdefault(
            name,
            {
                "family": name,
                "rank": None,
                "candidate": None,
                "confirm": False,
                "why": "not confirmed: no effect to measure (the family had no member on the screen's mazes)",
            },
        )
        if row.get("rank") is not None:
            confirm = row["candidate"] in picked
            entry.update(
                rank=row["rank"],
                candidate=row["candidate"],
                confirm=confirm,
                why=row["screen"] if confirm else "not confirmed: " + row["screen"].removeprefix("rejected: "),
            )
    return sorted(out.values(), key=lambda e: (e["rank"] is None, e["rank"] or 0, e["family"]))


# -- the confirm stage's verdicts -------------------------------------------------------------------------


def interval_summary(values: np.ndarray) -> dict[str, Any]:
    mean_ci, _, method = bca_intervals(values)
    return {
        "n": len(values),
        "mean": float(values.mean()) if len(values) else None,
        "mean_ci": mean_ci,
        "method": method,
    }


def record(summary: Mapping[str, Any], sign: int = 1) -> dict[str, Any]:
    """A {value, ci} record (what a batch's `reported` claim reads) of the change itself: `summary` holds the
    effect in the claimed direction (sign × change), so the sign turns it back."""
    mean, ci = summary["mean"], summary["mean_ci"]
    return {
        "value": None if mean is None else sign * mean,
        "ci": None if ci is None else sorted([sign * ci[0], sign * ci[1]]),
        "n": summary["n"],
        "interval": "95% BCa bootstrap",
    }


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
        name: _mean([r["own"].get(name) for r in rows]) for name in ("mean_steps", "mean_tv", "wall_mass", "entropy")
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
        wall = _mean([r["wall_mass"] for r in rows]) or 0.0
        ent = _mean([r["entropy"] for r in rows]) or 0.0
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


# -- what the search says of each family -------------------------------------------------------------------

STATUS_ORDER = ("found", "does not replicate", "inconclusive", "underpowered", "fails", "vacuous")
NOT_FOUND = "not found at this power"  # a family the screen ranked but did not send on to be confirmed
NOT_TESTED = "not tested"  # a family with no effect to measure on the screen's mazes


def effect_text(rec: Mapping[str, Any] | None) -> str:
    """'+0.031 [-0.010, +0.080]' of a {value, ci} record; '—' without a value."""
    if rec is None or rec.get("value") is None:
        return "—"
    ci = rec.get("ci")
    return f"{rec['value']:+.3f}" + ("" if ci is None else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]")


def detectable_text(x: float | None) -> str:
    return "— (fewer than 3 mazes, or no spread)" if x is None else f"{x:.3f}"


def _screen_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A screened candidate as the family table shows it: its effect beyond the control as the change itself
    (a {value, ci, n} record, signed), and the smallest effect its n detects with 80% power."""
    sign = row["sign"]
    return {
        "candidate": row["candidate"],
        "target": row["target"],
        "layer": row["layer"],
        "coeff": row["coeff"],
        "moves": LABELS[row["primary"]],
        "primary": row["primary"],
        "direction": "up" if sign > 0 else "down",
        "score": row["score"],
        "effect_beyond_control": record(row["screen_interval"], sign),
        "detectable": row["detectable"],
    }


def _not_new(name: str) -> str | None:
    """Why a found family is not a new X-vector, or None when it would be."""
    if name in KNOWN_FAMILIES:
        return f"{name} is a known vector's own pair (a rediscovery)"
    if FAMILIES[name].relative:
        return FAMILIES[name].relation or f"a relative of the {FAMILIES[name].relative} vector"
    return None


def family_table(
    screened: Sequence[Mapping[str, Any]], families: Sequence[Mapping[str, Any]], judged: Sequence[Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """One entry per searched family, in the screen's rank order: what the search can say of it at the power it
    had. `screened`: the screen's rows after `choose`; `families`: `screen_families`; `judged`: the confirm
    stage's rows after `final_verdicts`. Its status is `found` or the confirm verdict when it was confirmed, else
    `not found at this power` (the screen's effect beyond the control, its interval and n, and the smallest
    effect that n detects: not finding is not absence), or `not tested`; `statement` says it in a line."""
    rows = {r["candidate"]: r for r in screened}
    by_key = {j["candidate"]: j for j in judged}
    out: dict[str, dict[str, Any]] = {}
    for f in families:
        name, fam = f["family"], FAMILIES[f["family"]]
        best = rows.get(f["candidate"]) if f["candidate"] else None
        by_target: dict[str, dict[str, Any] | None] = {}
        for target in fam.targets:
            have = [
                r
                for r in screened
                if r["family"] == name and r["target"] == target and r["primary"] is not None and r["sign"] is not None
            ]
            # None: no candidate of this target moved anything beyond its control (or had no member)
            by_target[target] = (
                _screen_summary(min(have, key=lambda r: (-r["score"], r["candidate"]))) if have else None
            )
        screen = None if best is None else {**_screen_summary(best), "rank": f["rank"]}
        j = by_key.get(f["candidate"]) if f["confirm"] else None
        confirm = None
        if screen is None:
            status, statement = NOT_TESTED, "not tested: " + f["why"].removeprefix("not confirmed: ")
        elif j is None:
            e = screen["effect_beyond_control"]
            status = NOT_FOUND
            statement = (
                f"{NOT_FOUND} (not confirmed; screen rank {f['rank']}): screen effect beyond control "
                f"{effect_text(e)} on {screen['moves']} (n {e['n']}), detectable at this n: "
                f"{detectable_text(screen['detectable'])}"
            )
        else:
            sign = 1 if j["direction"] == "up" else -1
            confirm = {
                "candidate": j["candidate"],
                "role": j["role"],
                "status": j["status"],
                "why": j["why"],
                **{s: record(j[s]["effect"], sign) for s in SAMPLES},
                **{f"{s}_vs_control": record(j[s]["effect_minus_control"], sign) for s in SAMPLES},
                "detectable": {s: j[s]["effect_minus_control"]["detectable"] for s in SAMPLES},
            }
            status = j["status"]
            rep = confirm["replication_vs_control"]
            measured = (
                f"replication effect beyond control {effect_text(rep)} on {LABELS[j['primary']]} (n {rep['n']}), "
                f"detectable at this n: {detectable_text(confirm['detectable']['replication'])}"
            )
            if status == "found":
                note = _not_new(name)
                statement = f"found ({note}, not new): {measured}" if note else f"found, new: {measured}"
            else:
                statement = f"confirmed, {status} ({j['why'] or j['verdict_said']}): {measured}"
        out[name] = {
            "family": name,
            "factor": fam.factor,
            "place": fam.place,
            "targets": list(fam.targets),
            "rank": f["rank"],
            "status": status,
            "new": status == "found" and _not_new(name) is None,
            "statement": statement,
            "screen": screen,
            "screen_by_target": by_target,
            "confirmed": bool(f["confirm"]),
            "confirm_reason": f["why"],
            "confirm": confirm,
        }
    return out


def _families_text(n: int) -> str:
    return f"{n} famil{'y' if n == 1 else 'ies'}"


def answer(families: Mapping[str, Mapping[str, Any]]) -> str:
    """The search's answer to "more than the cheese and top-right vectors?", saying what was tested and at what
    power: what replicated among the families confirmed, and how small an effect the families it did not
    confirm could have had unseen. Never a bare "no": not finding is not absence."""
    rows = list(families.values())
    new = [r for r in rows if r["new"]]
    confirmed = [r for r in rows if r["confirmed"]]
    unseen = [r for r in rows if r["status"] == NOT_FOUND]
    untested = [r for r in rows if r["status"] == NOT_TESTED]
    place = [r for r in rows if r["place"]]
    verdicts = ", ".join(f"{k} {s}" for s in STATUS_ORDER if (k := sum(r["status"] == s for r in confirmed)))
    if new:
        said = f"yes: {len(new)} new X-vector{'s' if len(new) != 1 else ''} replicated ("
        said += ", ".join(r["confirm"]["candidate"] for r in new) + ")"
    else:
        said = f"no new X-vector replicated among the {_families_text(len(confirmed))} confirmed"
    said += (
        f" (of {len(rows)} searched, {len(place)} of them place families screened with the cheese kept and removed; "
        f"confirmed: {verdicts or 'none'})"
    )
    old = [r for r in confirmed if r["status"] == "found" and not r["new"]]
    if old:
        said += "; found but not new: " + ", ".join(f"{r['family']} ({_not_new(r['family'])})" for r in old)
    if unseen:
        ns = sorted({r["screen"]["effect_beyond_control"]["n"] for r in unseen})
        at = f"n {ns[0]}" if len(ns) == 1 else f"n {ns[0]}–{ns[-1]}"
        det = sorted(r["screen"]["detectable"] for r in unseen if r["screen"]["detectable"] is not None)
        if det:
            span = f"{det[0]:.3f}" if det[0] == det[-1] else f"{det[0]:.3f}–{det[-1]:.3f}"
            power = f"smallest effects beyond the control detectable at the screen's {at}: {span}"
            if len(det) < len(unseen):
                power += f"; {len(unseen) - len(det)} with too few mazes or no spread to say"
        else:
            power = f"the screen's {at} gives no detectable effect"
        said += f"; {_families_text(len(unseen))} {NOT_FOUND} ({power})"
    if untested:
        said += f"; {len(untested)} not tested (no effect to measure on the screen's mazes)"
    return said


def moved_text(st: Mapping[str, Any] | None) -> str:
    if not st:
        return "—"
    return (
        f"{st['claimed_way']['fraction']:.2f} / {st['opposite_way']['fraction']:.2f}"
        if st["claimed_way"]["fraction"] is not None
        else "—"
    )


__all__ = [
    "EFFECTS",
    "KNOWN_FAMILIES",
    "LABELS",
    "NOT_FOUND",
    "NOT_TESTED",
    "PROBABILITIES",
    "SAMPLES",
    "STATUS_ORDER",
    "TARGETS",
    "UNMOVED",
    "Candidate",
    "Settings",
    "answer",
    "behaviour_numbers",
    "changes",
    "choose",
    "clears_margin",
    "crumble_coefficient",
    "crumble_numbers",
    "detectable_text",
    "effect_text",
    "facing_slice",
    "family_table",
    "field_numbers",
    "final_verdicts",
    "interval_summary",
    "judge_sample",
    "moved_text",
    "pair_vectors",
    "record",
    "screen_families",
    "screen_table",
]
