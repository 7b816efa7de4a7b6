"""`steer probe`: linear probes from a finished `steer activations` run's sites to maze features.

    activations: outputs/acts           # the folder of a finished `steer activations` run (relative to the cwd)
    seeds: {from: 0, to: 199}           # the mazes to use; all must be in that run
    features: [top_right_reachable_corner_dist, has_decision_square]   # default: the first one
    sites: [block2.res1.resadd_out]     # optional; default: every site of the run
    folds: 5                            # GroupKFold over mazes

The cells are the sites (cell i is the i-th site in network order), each probed for every feature
(`steer.analysis.probing`). The report charts held-out probe quality against depth and, for each feature's best
site, the correlation of each channel's spatial mean with the feature.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from steer.analysis.probing import channel_correlations, probe
from steer.errors import SteerError, excerpt
from steer.io import inside, sha256_file
from steer.maze.features import FEATURES
from steer.report.charts import bar_rows
from steer.report.tables import Column, Table
from steer.run.options import Options, option
from steer.run.session import Session
from steer.run.spec_values import parse_layers
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.studies.activations import read_features

DEFAULT_FEATURE = "top_right_reachable_corner_dist"
MAX_CHANNEL_BARS = 40  # fc has 256 units: the strongest 40 are legible, the rest are listed in the JSON


@dataclass(frozen=True)
class ActivationsRef:
    """A finished activations run: its folder and the sha256 of the data it holds (`data_digest`), so that a
    changed run is a new probe run while a resumed one, whose report differs only in its bookkeeping, is not."""

    path: str
    sha256: str
    checkpoint: str  # the name and sha256 of the network that produced the activations (the probe loads none)
    sites: tuple[str, ...]
    chunks: tuple[tuple[int, int, str, tuple[tuple[str, str], ...]], ...]  # (seed, rows, features file, site files)

    def chunk(self, seed: int) -> tuple[int, int, str, dict[str, str]]:
        for c in self.chunks:
            if c[0] == seed:
                return c[0], c[1], c[2], dict(c[3])
        raise KeyError(seed)


def parse_activations(value: Any, where: str) -> ActivationsRef:
    if not isinstance(value, str) or not value.strip():
        raise SteerError(f"{where}: expected the folder of a finished `steer activations` run, got {excerpt(value)}.")
    folder = Path(value)
    report = folder / "activations.json"
    if not report.is_file():
        raise SteerError(
            f"{where}: {excerpt(value)} holds no activations.json; run `steer activations SPEC.yaml --out "
            f"{excerpt(value)}` first (and let it finish)."
        )
    try:
        data = json.loads(report.read_text())
        sites = tuple(str(s) for s in data["sites"])
        ck = data["provenance"]["checkpoint"]
        checkpoint = f"{ck['name']} sha256 {ck['sha256']}"
        chunks = tuple(
            (int(c["seed"]), int(c["rows"]), str(c["features"]), tuple((str(s), str(f)) for s, f in c["sites"].items()))
            for c in data["chunks"]
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise SteerError(f"{where}: {report} is not an activations report steer wrote ({excerpt(str(e))}).") from None
    for _, _, feats, files in chunks:
        for name in (feats, *(f for _, f in files)):
            if inside(folder, name) is None:
                raise SteerError(f"{where}: {report} names {excerpt(name)}, which is not a file inside its folder.")
    return ActivationsRef(str(folder), data_digest(folder, checkpoint, sites, chunks), checkpoint, sites, chunks)


def data_digest(
    folder: Path, checkpoint: str, site_names: tuple[str, ...], chunks: tuple[tuple[int, int, str, Any], ...]
) -> str:
    """The sha256 of what a probe reads: the checkpoint, the sites and every chunk's files by content. Not the
    report's bytes: a resumed activations run rewrites activations.json (its count of reused cells, its times)
    over the same data, and its probe must stay resumable."""
    files = [
        {"seed": seed, "rows": rows, "files": {n: sha256_file(folder / n) for n in (feats, *(f for _, f in sites))}}
        for seed, rows, feats, sites in chunks
    ]
    record = {"checkpoint": checkpoint, "sites": list(site_names), "chunks": files}
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def parse_features(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise SteerError(f"{where}: expected a non-empty list of feature names, e.g. [{DEFAULT_FEATURE}].")
    for i, name in enumerate(value):
        if not isinstance(name, str) or name not in FEATURES:  # a list item is unhashable: no dict lookup
            raise SteerError(f"{where}[{i}]: {excerpt(name)} is not a feature. Features: {', '.join(FEATURES)}.")
    return tuple(dict.fromkeys(value))


def parse_folds(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 50:
        raise SteerError(f"{where}: expected an integer from 2 to 50 (folds over mazes), got {excerpt(value)}.")
    return value


@dataclass(frozen=True, kw_only=True)
class ProbeOptions(Options):
    activations: ActivationsRef = option(
        parse_activations,
        missing="activations: missing; name the folder of a finished `steer activations` run, e.g. "
        "activations: outputs/activations.",
    )
    features: tuple[str, ...] = option(parse_features, default=(DEFAULT_FEATURE,))
    sites: tuple[str, ...] = option(parse_layers, default=(), about="sites of the run to probe (default: all)")
    folds: int = option(parse_folds, default=5)


def _ref(spec: Spec) -> ActivationsRef:
    return spec.options.activations


def _sites(spec: Spec) -> tuple[str, ...]:
    ref = _ref(spec)
    wanted = spec.options.sites
    return ref.sites if not wanted else tuple(s for s in ref.sites if s in wanted)


def check(spec: Spec) -> None:
    for key in ("layer", "target_edits"):  # shared keys a probe would otherwise ignore silently
        if spec.raw.get(key) is not None:
            raise SteerError(
                f"{key}: `steer probe` reads the sites and mazes of its activations run; set {key} in that run's spec."
            )
    ref = _ref(spec)
    for i, name in enumerate(spec.options.sites):
        if name not in ref.sites:
            raise SteerError(
                f"sites[{i}]: {excerpt(name)} is not stored in {ref.path}; it holds {', '.join(ref.sites)}."
            )
    have = {c[0] for c in ref.chunks}
    missing = [s for s in spec.seeds if s not in have]
    if missing:
        raise SteerError(
            f"seeds: {len(missing)} seed(s) are not in {ref.path} (e.g. {missing[0]}); it holds {len(have)} mazes."
        )
    if len(spec.seeds) < 2:
        raise SteerError("seeds: a probe scored on held-out mazes needs at least 2 mazes.")


def load_site(ref: ActivationsRef, seeds: tuple[int, ...], site: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One site's activations for `seeds` as float32 (rows, *shape), and the feature columns row for row."""
    folder = Path(ref.path)
    xs, feats = [], []
    for seed in seeds:
        _, rows, features, files = ref.chunk(seed)
        with np.load(folder / files[site]) as npz:
            x = npz["x"]
        f = read_features(folder / features)
        if len(x) != rows or len(f["seed"]) != rows:
            raise SteerError(f"activations: seed {seed}'s files in {ref.path} do not hold {rows} rows; rerun it.")
        xs.append(x.astype(np.float32))
        feats.append(f)
    return np.concatenate(xs), {k: np.concatenate([f[k] for f in feats]) for k in feats[0]}


@dataclass(frozen=True)
class Plan:
    spec: Spec
    sites: tuple[str, ...]
    features: tuple[str, ...]
    folds: int
    layer: str

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        site = self.sites[seed]  # the runner's cell number is the site's index
        x, f = load_site(_ref(self.spec), self.spec.seeds, site)
        flat = x.reshape(len(x), -1)
        groups = f["seed"].astype(np.int64)
        result = {name: probe(flat, f[name], groups, FEATURES[name], self.folds) for name in self.features}
        return "done", [], {"seed": seed, "site": site, "shape": list(x.shape[1:]), "probes": result}


def plan(spec: Spec, session: Session) -> Plan:
    sites = _sites(spec)
    return Plan(spec, sites, spec.options.features, spec.options.folds, ", ".join(sites))


def depth_chart(feature: str, done: Sequence[dict[str, Any]], best: str | None) -> Figure:
    """Held-out probe score per site (the report's `probes`, network order), the best site highlighted."""
    rows = [(c["site"], c["probes"][feature]) for c in done]
    metric = next((r["metric"] for _, r in rows if "metric" in r), "r2")
    values = [r.get("score") for _, r in rows]
    labels = [f"{s}  [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]" if r.get("ci") else s for s, r in rows]
    # A round left end so the ticks line up: 0 unless a score is negative (a probe worse than the mean).
    low = min([0.0, *(v for v in values if v is not None)])
    low = 0.0 if low >= 0 else (-0.5 if low >= -0.5 else -1.0)
    shuffled = [r["shuffled"]["score"] for _, r in rows if "shuffled" in r]
    return bar_rows(
        f"{feature}: held-out {'R2' if metric == 'r2' else 'accuracy'} by site (GroupKFold over mazes)",
        labels,
        values,
        reference=max(shuffled) if shuffled else None,
        footer="bars: pooled out-of-fold score, 95% bootstrap interval over mazes; dashed: best shuffled-feature score",
        value_range=(low, 1.0),
        highlight=next((lab for lab, (s, _) in zip(labels, rows, strict=True) if s == best), None),
        xlabel=f"held-out {'R2' if metric == 'r2' else 'accuracy'}",
    )


def channel_chart(feature: str, site: str, corr: list[float | None]) -> Figure:
    """The channels (or units) most correlated with the feature at the best site, in index order."""
    order = sorted(range(len(corr)), key=lambda c: -abs(corr[c] or 0.0))[:MAX_CHANNEL_BARS]
    order.sort()
    unit = "unit" if len(corr) > 64 else "channel"
    return bar_rows(
        f"{feature} vs each {unit}'s spatial mean at {site} (Pearson r)",
        [f"{unit} {c}" for c in order],
        [corr[c] for c in order],
        reference=0.0,
        footer=f"the {len(order)} of {len(corr)} {unit}s with the largest |r|, in index order",
        value_range=(-1.0, 1.0),
        xlabel="Pearson r",
    )


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    figures: dict[str, Figure] = {}
    best: dict[str, Any] = {}
    for feature in plan.features:
        scored = [(c["site"], c["probes"][feature]) for c in done if "score" in c["probes"][feature]]
        site, r = max(scored, key=lambda sr: sr[1]["score"]) if scored else (None, None)
        figures[f"probe-{feature}.png"] = depth_chart(feature, done, site)
        if site is None or r is None:
            best[feature] = None
            continue
        # Only the best site is loaded again: one site's activations at a time, never all of them.
        x, f = load_site(_ref(spec), spec.seeds, site)
        corr = channel_correlations(x, f[feature])
        best[feature] = {"site": site, "score": r["score"], "ci": r["ci"], "metric": r["metric"], "channels": corr}
        figures[f"channels-{feature}.png"] = channel_chart(feature, site, corr)
    ref = _ref(spec)
    return Report(
        {
            "activations": {"path": ref.path, "sha256": ref.sha256, "checkpoint": ref.checkpoint},
            "sites": list(plan.sites),
            "features": {f: FEATURES[f] for f in plan.features},
            "mazes": len(spec.seeds),
            "probes": done,
            "best": best,
        },
        figures,
    )


def summary(report: dict[str, Any]) -> list[str]:
    lines = []
    for feature, b in report["best"].items():
        if b is None:
            lines.append(f"{feature}: no site could be scored")
            continue
        ci = f" [{b['ci'][0]:.2f}, {b['ci'][1]:.2f}]" if b["ci"] else ""
        lines.append(f"{feature}: best site {b['site']}, held-out {b['metric']} {b['score']:.3f}{ci}")
    return lines


PROBES = Table(
    "probes",
    "one row per site and feature: the probe's held-out score and the shuffled-label control's",
    (
        Column("site", "str", "", "the hook point probed"),
        Column("feature", "str", "", "the maze feature predicted (steer/maze/features.py)"),
        Column("metric", "str", "", "r2 (a continuous feature) or accuracy (a class)"),
        Column("score", "float", "", "the metric out of fold, over the folds' held-out mazes"),
        Column("ci_low", "float", "", "its 95% bootstrap interval over mazes"),
        Column("ci_high", "float", "", "its 95% bootstrap interval over mazes"),
        Column("shuffled_score", "float", "", "the same probe fitted on shuffled labels (the chance level)"),
        Column("shuffled_ci_low", "float", "", "its 95% interval"),
        Column("shuffled_ci_high", "float", "", "its 95% interval"),
        Column("rows", "int", "", "activation rows (maze x square)"),
        Column("mazes", "int", "mazes", "mazes (the folds' groups)"),
        Column("folds", "int", "", "cross-validation folds"),
    ),
)


def probe_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for cell in f.done:
        for feature, r in cell["probes"].items():
            ci, shuffled = r.get("ci") or (None, None), r.get("shuffled") or {}
            low, high = shuffled.get("ci") or (None, None)
            yield {"site": cell["site"], "feature": feature, "metric": r.get("metric"), "score": r.get("score"),
                   "ci_low": ci[0], "ci_high": ci[1], "shuffled_score": shuffled.get("score"),
                   "shuffled_ci_low": low, "shuffled_ci_high": high,
                   **{k: r.get(k) for k in ("rows", "mazes", "folds")}}  # fmt: skip


STUDY = Study(
    name="probe",
    help="Linear probes from a finished activations run's sites to maze features, scored on held-out mazes.",
    options=ProbeOptions,
    plan=plan,
    report=report,
    check=check,
    cells=lambda spec: tuple(range(len(_sites(spec)))),
    summary=summary,
    grows=False,  # every seed feeds every cell (site): more seeds is a new probe
    report_name="probe.json",
    tables=(StudyTable(PROBES, probe_rows),),
)
