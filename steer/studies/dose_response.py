"""`steer dose-response`: how a vector's effect grows with its coefficient t at every site downstream of it.

    seeds: {from: 0, to: 49}
    vector: {kind: top_right}           # own, source_seed, source_seeds (a mean) or file, as in `apply`
    ts: [-1, -0.1, 0.1, 1]              # optional; default ±[0.01, 0.03, 0.1, 0.3, 1, 2, 5, 10, 20]
    sites: [block3.res1.resadd_out]     # optional; default every hook point after the layer through fc_policy
    asymmetry_threshold: 0.2            # optional; where the add/subtract asymmetry at t = 1 is reported

Per maze and site: ||D(t)||, the linearity ratio, the odd asymmetry and (at ReLU outputs) the fraction of units
whose on/off state flips (`steer.net.dose`), the same at the action probabilities, and P(cheese | DS),
P(top-right | DS) and mean TV at each t. The prefix up to the layer runs once per maze; the suffix runs for all
t at once in batches, and only running sums are kept, so memory does not grow with the number of t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from matplotlib.figure import Figure

from steer.analysis.metrics import METRICS, describe, describe_many, fmt, maze_info
from steer.errors import SteerError, excerpt
from steer.net.dose import DEFAULT_TS, SiteDose, sign_pairs
from steer.net.policy import display_name
from steer.net.vfield import FieldInputs, VectorField, action_probs, check_finite
from steer.report.charts import BandSeries, band_charts, heatmap
from steer.run.options import Options, option, vector_option
from steer.run.session import Session
from steer.run.spec_fields import finite_float
from steer.run.spec_values import VectorSpec, parse_coeffs, parse_layers
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study
from steer.run.vector_plan import OneVectorPlan, plan_vector
from steer.studies.dose_response_tables import BEHAVIOUR, PROBS, TABLES

MEASURES = ("norm", "linearity", "relu_flips")  # per t; the asymmetry is per |t|


def parse_ts(value: Any, where: str = "ts") -> tuple[float, ...]:
    """Coefficients as `coeffs` takes them, sorted; 0 is refused (it is the baseline every D(t) is taken from)."""
    ts = parse_coeffs(value, where)
    if 0 in ts:
        raise SteerError(f"{where}: 0 is the baseline D(t) is measured from, computed always; leave it out.")
    return tuple(sorted(ts))


def parse_threshold(value: Any, where: str = "asymmetry_threshold") -> float:
    x = finite_float(value, where)
    if not 0 < x < 1:
        raise SteerError(f"{where}: {x:g} is out of range; the asymmetry lies in [0, 1], so use a number in (0, 1).")
    return x


def _is_relu(site: str) -> bool:
    """A ReLU output, by internal (`block2.res1.relu1`) or display (`relu3_out`) name."""
    return site.rsplit(".", 1)[-1].startswith("relu")


def downstream_sites(session: Session, layer: str, asked: tuple[str, ...] | None) -> tuple[str, ...]:
    """Internal names of the measured sites: those asked for (each after the layer), or every site after it."""
    policy = session.policy
    start = policy.site_index(layer)
    last = policy.site_index("fc_policy")
    if not asked:
        # `flatten` is relu3 reshaped: the same numbers, so measuring it twice would add nothing.
        return tuple(s.name for s in policy.sites[start + 1 : last + 1] if s.name != "flatten")
    out = []
    for i, name in enumerate(asked):
        where = f"sites[{i}]"
        try:
            site = policy.resolve(name)
        except SteerError:
            raise SteerError(
                f"{where}: {excerpt(name)} is not a hook point of this policy. Valid names: "
                f"{', '.join(policy.hook_names)}."
            ) from None
        if not start < policy.site_index(site) <= last:
            raise SteerError(
                f"{where}: {display_name(site)} is not downstream of the layer {display_name(layer)} (or is the value "
                "head); give sites after the layer, up to fc_policy."
            )
        out.append(site)
    return tuple(sorted(dict.fromkeys(out), key=policy.site_index))


@dataclass(frozen=True, kw_only=True)
class DoseOptions(Options):
    vector: VectorSpec = vector_option()
    ts: tuple[float, ...] = option(parse_ts, default=DEFAULT_TS, about="the coefficients t, both signs")
    sites: tuple[str, ...] | None = option(parse_layers, default=None, about="downstream sites (default: all)")
    asymmetry_threshold: float = option(parse_threshold, default=0.2)


@dataclass(frozen=True)
class Plan(OneVectorPlan):
    ts: tuple[float, ...]
    sites: tuple[str, ...]  # internal names, in network order

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        try:
            target, vec = self.target_and_vector(session, seed)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        policy, inputs = session.policy, FieldInputs.render(session.renderer, target, session.device)
        site = policy.resolve(self.layer)
        ts = (0.0, *self.ts)
        k, n = len(ts), len(inputs.positions)
        acc = {s: SiteDose(self.ts, _is_relu(s)) for s in (*self.sites, PROBS)}
        probs = []
        keep = frozenset({*self.sites, "fc_policy"})
        # Observations × t per suffix pass ≈ 4 × batch_size: the measures reduce every kept site per pass, and
        # on 2 cores passes of ~256 ran a third faster than ~64 (per-pass overhead of ~22 sites' reductions).
        step = max(1, 4 * self.spec.batch_size // k)
        with torch.inference_mode():
            values = inputs.prefix(policy, site, self.spec.batch_size)
            x = values[site]
            # t · delta for every t at once, as (k, 1, ...): the same float32 products as t * delta one t at a time.
            scaled = torch.tensor(ts, dtype=x.dtype, device=x.device).view(k, *[1] * x.ndim) * vec.tensor.to(x)
            for i in range(0, n, step):
                batch = {}
                for name, v in values.items():  # other values: the residual stream when the layer is inside a block
                    chunk = v[i : i + step]
                    batch[name] = buf = _batch(chunk, k)
                    blocks = buf.view(k, *chunk.shape)
                    if name == site:
                        torch.add(chunk, scaled, out=blocks)
                    else:
                        blocks.copy_(chunk.expand_as(blocks))
                got = policy.run(batch, start=site, keep=keep)
                got[PROBS] = action_probs(got["fc_policy"])
                for s, a in acc.items():
                    a.add(got[s], k)
                probs.append(got[PROBS].reshape(k, -1, got[PROBS].shape[-1]).cpu())
        by_t = torch.cat(probs, dim=1).numpy()
        check_finite(by_t, [self.layer])
        fields = [VectorField(target, inputs.positions, p) for p in by_t]
        # A field metric of each patched field alone (`unpatched` of that field: computing it with the original
        # would redo the original's decision square and paths at every t); mean TV compares the two.
        behaviour = {
            name: [
                METRICS[name].unpatched(f) if METRICS[name].paired else METRICS[name].compute(fields[0], f)
                for f in fields[1:]
            ]
            for name in BEHAVIOUR
        }
        entry = {
            "seed": seed,
            **maze_info(target),
            "vector_source_seed": vec.meta.get("source_seed"),
            "vector_norm": float(vec.tensor.norm()),
            "original": {name: METRICS[name].unpatched(fields[0]) for name in BEHAVIOUR[:2]},
            "behaviour": behaviour,
            "sites": {site_label(s): a.result() for s, a in acc.items()},
        }
        return "done", [], entry


def _batch(chunk: torch.Tensor, k: int) -> torch.Tensor:
    """An empty batch of k copies of `chunk`, in its memory layout (the convolutions run channels-last), so
    the k blocks are written in place rather than built and then copied into that layout."""
    shape = (k * chunk.shape[0], *chunk.shape[1:])
    if chunk.ndim == 4 and chunk.is_contiguous(memory_format=torch.channels_last):
        return torch.empty(shape, dtype=chunk.dtype, device=chunk.device, memory_format=torch.channels_last)
    return torch.empty(shape, dtype=chunk.dtype, device=chunk.device)


def site_label(site: str) -> str:
    return site if site == PROBS else display_name(site)


def plan(spec: Spec, session: Session) -> Plan:
    assert spec.options.vector is not None
    vector = plan_vector(session, spec, spec.options.vector, 1.0, "vector")
    site = session.policy.resolve(vector.layer)
    if site in ("fc_policy", "fc_value"):
        raise SteerError(f"layer: {vector.layer} has no site after it to measure; use an earlier layer.")
    ts = spec.options.ts
    return Plan(spec, vector, ts, downstream_sites(session, site, spec.options.sites))


class _Columns:
    """Summaries asked for one by one and computed together (`describe_many` batches the bootstraps)."""

    def __init__(self) -> None:
        self.columns: list[list[float | None]] = []

    def over_mazes(self, rows: list[list[float | None] | None], count: int) -> list[int]:
        """Each position's values over the mazes that have the measure, as placeholders for `fill`."""
        present = [r for r in rows if r is not None]
        if not present:
            return []
        self.columns += [[r[i] for r in present] for i in range(count)]
        return list(range(len(self.columns) - count, len(self.columns)))

    def fill(self, tree: Any) -> Any:
        return _replace(tree, describe_many(self.columns))


def _replace(tree: Any, summaries: list[dict[str, Any]]) -> Any:
    if isinstance(tree, dict):
        return {k: _replace(v, summaries) for k, v in tree.items()}
    return [summaries[i] for i in tree]


def dose_summary(
    ts: tuple[float, ...], sites: list[str], mazes: list[dict[str, Any]], threshold: float
) -> dict[str, Any]:
    magnitudes = [m for m, _, _ in sign_pairs(ts)]
    out: dict[str, Any] = {"mazes": len(mazes), "ts": list(ts), "magnitudes": magnitudes}
    cols = _Columns()
    per_site: dict[str, Any] = {}
    for s in sites:
        rows = [m["sites"][s] for m in mazes]
        per_site[s] = {key: cols.over_mazes([r[key] for r in rows], len(ts)) for key in MEASURES}
        per_site[s]["asymmetry"] = cols.over_mazes([r["asymmetry"] for r in rows], len(magnitudes))
    behaviour = {name: cols.over_mazes([m["behaviour"][name] for m in mazes], len(ts)) for name in BEHAVIOUR}
    out["sites"], out["behaviour"] = cols.fill({"sites": per_site, "behaviour": behaviour}).values()
    out["original"] = {name: describe([m["original"][name] for m in mazes]) for name in BEHAVIOUR[:2]}
    # A ReLU output is asymmetric by construction wherever units sit near zero, so the first site past the
    # threshold is also reported among the others (convolutions, residual stream, fc, logits, probabilities).
    stream = [s for s in sites if not _is_relu(s)]
    for key, among in (("first_asymmetric", sites), ("first_asymmetric_non_relu", stream)):
        firsts = [_first_over(out, among, j, mag, threshold) for j, mag in enumerate(magnitudes)]
        at_one = next((f for f in firsts if f["t"] == 1), None)
        out[f"{key}_site"] = {
            "threshold": threshold,
            **(at_one or {"t": 1.0, "site": None, "median_asymmetry": None, "note": "t = ±1 is not in ts"}),
        }
        out[f"{key}_by_t"] = firsts
    return out


def _first_over(summary: dict[str, Any], sites: list[str], j: int, mag: float, threshold: float) -> dict[str, Any]:
    """The first of `sites` (network order) whose median asymmetry at the j-th |t| exceeds `threshold`."""
    for s in sites:
        v = summary["sites"][s]["asymmetry"][j]["median"] if summary["sites"][s]["asymmetry"] else None
        if v is not None and v > threshold:
            return {"t": mag, "site": s, "median_asymmetry": v}
    return {"t": mag, "site": None, "median_asymmetry": None}


def _series(summary: dict[str, Any], sites: list[str], key: str, log: bool = False) -> list[BandSeries]:
    def tr(v: float | None) -> float | None:
        return math.log10(v) if log and v is not None and v > 0 else (None if log else v)

    series = []
    for s in sites:
        rows = summary["sites"][s][key]
        if not rows:
            continue
        series.append(
            BandSeries(
                s, [tr(r["median"]) for r in rows], [tr(r["q25"]) for r in rows], [tr(r["q75"]) for r in rows],
                [r["n"] for r in rows], baseline=1.0 if key == "linearity" else None,
            )
        )  # fmt: skip
    return series


def t_label(t: float) -> str:
    """A short x label: '-.03', '+1', '+20' (the leading zero dropped so 18 labels fit under one chart)."""
    text = f"{t:+g}"
    return text.replace("0.", ".", 1) if abs(t) < 1 else text


def figures(summary: dict[str, Any], ts: Sequence[float], head: str, threshold: float) -> dict[str, Figure]:
    """The run's figures from its summary (metrics.json's `summary` and `ts`): per site the norm, linearity and
    ReLU flips against t, the behaviour against t, and the odd asymmetry per site and |t|."""
    sites = list(summary["sites"])
    labels = [t_label(t) for t in ts]
    spacing = "t is evenly spaced on the x axis, not to scale"
    out = {
        "dose-norm.png": band_charts(
            f"log10 ||D(t)|| per site · {head}", labels, _series(summary, sites, "norm", log=True), spacing, 4, "t"
        ),
        "dose-linearity.png": band_charts(
            f"linearity ratio ||D(t)|| / (|t| · slope at smallest |t|) · {head}",
            labels,
            _series(summary, sites, "linearity"),
            f"dashed: 1 (a linear response) · {spacing}",
            4,
            "t",
        ),
    }
    flips = _series(summary, sites, "relu_flips")
    if flips:
        out["dose-relu-flips.png"] = band_charts(
            f"fraction of ReLU units flipped vs t = 0 · {head}", labels, flips, spacing, 4, "t"
        )
    behaviour = []
    for name in BEHAVIOUR:
        rows = summary["behaviour"][name]
        if rows and any(r["n"] for r in rows):
            base = summary["original"][name]["median"] if name in summary["original"] else None
            behaviour.append(
                BandSeries(
                    METRICS[name].label, [r["median"] for r in rows], [r["q25"] for r in rows],
                    [r["q75"] for r in rows], [r["n"] for r in rows], baseline=base,
                )
            )  # fmt: skip
    if behaviour:
        out["dose-behaviour.png"] = band_charts(
            f"behaviour against t · {head}", labels, behaviour, f"dashed: median at t = 0 · {spacing}", 3, "t"
        )
    mags = summary["magnitudes"]
    if mags:
        values = [[r["median"] for r in summary["sites"][s]["asymmetry"]] or [None] * len(mags) for s in sites]
        notes = [["> threshold" if v is not None and v > threshold else "" for v in row] for row in values]
        out["dose-asymmetry.png"] = heatmap(
            f"odd asymmetry ||D(t)+D(-t)|| / (||D(t)||+||D(-t)||), median over mazes · {head}",
            sites,
            [f"|t| = {m:g}" for m in mags],
            values,
            notes,
            ("site (network order)", "|t|"),
            footer=f"0: adding and subtracting mirror each other · 1: both push the same way · threshold {threshold:g}",
            scale_label="median odd asymmetry",
        )
    return out


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    threshold = spec.options.asymmetry_threshold
    sites = [site_label(s) for s in (*plan.sites, PROBS)]
    summary = dose_summary(plan.ts, sites, done, threshold)
    head = f"{plan.vector.label} at {plan.layer} · {summary['mazes']} mazes · {session.title}"
    body = {"vector": plan.vector.describe(), "ts": list(plan.ts), "sites": sites, "mazes": done, "summary": summary}
    return Report(body, figures(summary, plan.ts, head, threshold) if done else {})


def summary_lines(report: dict[str, Any]) -> list[str]:
    s = report["summary"]
    lines = [f"{s['mazes']} mazes, {len(s['ts'])} values of t, {len(s['sites'])} sites"]
    for key, what in (("first_asymmetric_site", "site"), ("first_asymmetric_non_relu_site", "non-ReLU site")):
        first = s[key]
        if first["site"] is not None:
            lines.append(
                f"first {what} with median asymmetry > {first['threshold']:g} at t = ±1: {first['site']} "
                f"({fmt(first['median_asymmetry'], 3)})"
            )
        else:
            lines.append(f"no {what} has median asymmetry > {first['threshold']:g} at t = ±1")
    probs = s["sites"].get(PROBS, {}).get("asymmetry", [])
    for mag, row in zip(s["magnitudes"], probs, strict=False):
        lines.append(f"|t| = {mag:g}: action-probability asymmetry median {fmt(row['median'], 3)}")
    return lines


STUDY = Study(
    name="dose-response",
    help="Measure how a vector's effect grows with its coefficient at every downstream site (linearity, asymmetry).",
    options=DoseOptions,
    plan=plan,
    report=report,
    summary=summary_lines,
    tables=TABLES,
)
