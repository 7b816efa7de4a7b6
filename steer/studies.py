"""Studies built on `apply`: several vectors at once, one vector over many coefficients, vectors across mazes.

- compose:     vectors, each with its own coefficient and layer, added in one forward pass. Per maze the
               additivity error ||Δ(all) − ΣΔ(single)|| / ||Δ(all)|| compares the joint change of the action
               probabilities with the sum of the single-vector changes (Frobenius over squares × 15 actions).
- sweep-coeff: one vector over a list of coefficients. The network prefix up to the injection layer runs once
               per maze and only the suffix runs per coefficient (`FieldInputs` memoises the prefix).
- transfer:    vectors computed on `sources` mazes applied to `targets` mazes, as a source × target matrix.

Like `steer.experiments`, each `run_*` checks its spec before any work, skips (and reports) seeds whose vector
cannot be built, writes every file atomically, and returns the report it wrote as metrics.json:

    spec = load_spec("configs/compose.yaml")
    report = run_compose(spec, open_session(spec), Path("outputs/compose"))
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steer.errors import SteerError
from steer.experiments import (
    Session,
    _run_cells,
    build_vector,
    load_vector_file,
    provenance,
    resolve_layer,
    target_maze,
)
from steer.maze import Maze, Square
from steer.metrics import maze_metrics, summarize
from steer.render import LEGEND, BandSeries, Panel, band_charts, bar_rows, figure, grid_figure, heatmap, save_png
from steer.runs import RunFolder
from steer.specs import DEFAULT_LAYER, Spec, VectorSpec, check_keys
from steer.vectors import PairSpec, SteeringVector
from steer.vfield import DIRECTIONS, FieldInputs, VectorField, direction_prob, vector_field, vector_fields

OnSeed = Callable[[int], None]
DIFF_RGB = (200, 30, 40)

# -- spec checks ----------------------------------------------------------------------------------

# What the CLI passes to load_spec(require=...); transfer's seeds come from `seeds` or `targets`.
REQUIRED: dict[str, tuple[str, ...]] = {
    "compose": ("seeds", "vectors"),
    "sweep-coeff": ("seeds", "vector", "coeffs"),
    "transfer": ("vector", "coeff"),
    "layer-sweep": ("seeds", "vector", "coeff"),
}


def check_spec(spec: Spec, command: str) -> None:
    """Checks that need no checkpoint, so that a bad spec fails before anything is loaded or written."""
    check_keys(spec, command)
    if command == "compose" and len(spec.vectors) < 2:
        raise SteerError("vectors: compose needs at least two vectors; `steer apply` applies a single one.")
    if command in ("sweep-coeff", "transfer", "layer-sweep") and spec.vector is None:
        raise SteerError("vector: missing; give an inline vector spec ({kind: cheese}) or {file: PATH}.")
    if command == "sweep-coeff" and not spec.coeffs:
        raise SteerError("coeffs: missing; give a list such as [-1, 1, 2] or a range {from: -2, to: 2, step: 0.5}.")
    for i, seed in enumerate(spec.grid_seeds):
        if seed not in spec.seeds:
            raise SteerError(f"grid_seeds[{i}]: seed {seed} is not one of the seeds ({_seed_list(spec.seeds)}); "
                             "a field grid can only be drawn for a maze the sweep runs.")
    if command == "transfer":
        _check_transfer(spec)
    if command == "layer-sweep":
        assert spec.vector is not None
        if spec.vector.pair is None or spec.vector.source_seed is not None:
            raise SteerError("vector: a layer sweep computes each maze's own vector at every layer; give an inline "
                             "vector spec such as {kind: cheese} without file or source_seed.")
        if spec.coeff is None:
            raise SteerError("coeff: missing; give the coefficient to apply at every layer, e.g. coeff: -1.")


def _check_transfer(spec: Spec) -> None:
    assert spec.vector is not None
    if spec.vector.file is not None:
        raise SteerError("vector.file: transfer computes one vector per source seed; give an inline vector spec "
                         "such as {kind: cheese}.")
    if spec.vector.source_seed is not None:
        raise SteerError("vector.source_seed: transfer takes its source seeds from `sources`; remove source_seed.")
    if spec.coeff is None:
        raise SteerError("coeff: missing; give the coefficient to multiply each source's vector by, e.g. coeff: -1.")
    if spec.sources and spec.targets and spec.raw.get("seeds") is not None:
        raise SteerError("seeds: with both `sources` and `targets` given, `seeds` would be ignored; remove it.")
    sources, targets = transfer_seeds(spec)
    for i, (src, tgt) in enumerate(spec.show):
        if src not in sources:
            raise SteerError(f"show[{i}][0]: seed {src} is not one of the sources ({_seed_list(sources)}).")
        if tgt not in targets:
            raise SteerError(f"show[{i}][1]: seed {tgt} is not one of the targets ({_seed_list(targets)}).")


def transfer_seeds(spec: Spec) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Sources and targets of a transfer; either defaults to `seeds`."""
    return spec.sources or spec.seeds, spec.targets or spec.seeds


def _seed_list(seeds: Sequence[int]) -> str:
    return ", ".join(map(str, seeds[:10])) + (", …" if len(seeds) > 10 else "")


# -- vectors --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VectorPlan:
    """One vector of a study: fixed (a file or a source seed) or built from each target maze's own pair."""

    where: str  # the spec path, for messages: "vector", "vectors[1]"
    kind: str
    layer: str  # display name
    coeff: float
    label: str
    pair: PairSpec | None = None
    fixed: SteeringVector | None = None

    def for_target(self, session: Session, spec: Spec, seed: int) -> SteeringVector:
        if self.fixed is not None:
            return self.fixed
        assert self.pair is not None
        try:
            return build_vector(session, spec, seed, self.pair, self.layer)
        except SteerError as e:
            raise SteerError(f"{self.where} ({self.kind}): {e}") from None


def plan_vector(
    session: Session, spec: Spec, vspec: VectorSpec, coeff: float, where: str,
    layer: str | None = None, label: str | None = None,
) -> VectorPlan:
    """Resolve a vector spec before any target is touched: load its file or build its source-seed vector."""
    if vspec.file is not None:
        # A file fixes the layer; the spec's layer may only restate it (DEFAULT_LAYER means "not given").
        explicit = layer or (spec.layer if spec.layer != DEFAULT_LAYER else None)
        vec = load_vector_file(session, vspec.file, explicit, where)
        name = label or f"{coeff:+g} x {vec.kind} ({vspec.file.name})"
        return VectorPlan(where, vec.kind, vec.layer, coeff, name, fixed=vec)
    assert vspec.pair is not None
    resolved = resolve_layer(session.policy, layer or spec.layer, f"{where}.layer" if layer else "layer")
    fixed = None
    if vspec.source_seed is not None:
        try:
            fixed = build_vector(session, spec, vspec.source_seed, vspec.pair, resolved)
        except SteerError as e:
            raise SteerError(f"{where}.source_seed: seed {vspec.source_seed}: {e}") from None
    origin = f" (seed {vspec.source_seed})" if vspec.source_seed is not None else ""
    name = label or f"{coeff:+g} x {vspec.pair.kind}{origin}"
    return VectorPlan(where, vspec.pair.kind, resolved, coeff, name, pair=vspec.pair, fixed=fixed)


# -- extra per-field signals ----------------------------------------------------------------------


def mean_entropy(field: VectorField) -> float | None:
    """Mean over squares of the action distribution's entropy, in nats (uniform over 15 actions: ln 15 ≈ 2.71)."""
    if not len(field.probs):
        return None
    p = field.probs.astype(np.float64)
    return float(-(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1).mean())


def blocked_moves(maze: Maze, positions: Sequence[Square]) -> np.ndarray:
    """(N, 4) bool, in DIRECTIONS order: True where that move from the square runs into a wall or the world edge."""
    return np.array(
        [[not maze.is_open((r + dr, c + dc)) for dr, dc in DIRECTIONS] for r, c in positions], dtype=bool
    ).reshape(len(positions), len(DIRECTIONS))


def wall_mass(field: VectorField) -> float | None:
    """Mean over squares of the probability of moves into walls (such moves leave the mouse where it is)."""
    if not len(field.probs):
        return None
    moves = np.stack([direction_prob(field.probs.astype(np.float64), step) for step in DIRECTIONS], axis=-1)
    return float((moves * blocked_moves(field.maze, field.positions)).sum(axis=-1).mean())


def additivity_error(original: np.ndarray, singles: Sequence[np.ndarray], together: np.ndarray) -> float | None:
    """||Δ(all) − ΣΔ(single)||_F / ||Δ(all)||_F over squares × actions; None when the joint change is zero."""
    base = original.astype(np.float64)
    joint = together.astype(np.float64) - base
    predicted = sum((s.astype(np.float64) - base for s in singles), np.zeros_like(base))
    norm = float(np.linalg.norm(joint))
    return None if norm == 0 else float(np.linalg.norm(joint - predicted)) / norm


def spread(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Median, quartiles and mean of the defined values (mazes where a metric is undefined are left out)."""
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if not len(present):
        return {"median": None, "q25": None, "q75": None, "mean": None, "n": 0}
    q25, median, q75 = np.percentile(present, [25, 50, 75])
    return {"median": float(median), "q25": float(q25), "q75": float(q75), "mean": float(present.mean()),
            "n": len(present)}


MAZE_KEYS = ("maze_dim", "cheese", "decision_square")


def effect_metrics(original: VectorField, patched: VectorField) -> dict[str, Any]:
    """`maze_metrics` without the keys that describe the maze rather than the patch."""
    return {k: v for k, v in maze_metrics(original, patched).items() if k not in MAZE_KEYS}


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _headline(maze: Maze, m: dict[str, Any], side: str) -> str:
    """The caption number of a panel: P(cheese | decision square) where the maze has one."""
    if m["decision_square"] is not None:
        return f"P(cheese | ds) {_fmt(m['p_cheese_ds'][side])}"
    if maze.cheese is not None:
        return f"P(to cheese) {_fmt(m['p_toward_cheese'][side])}"
    return f"P(to top-right) {_fmt(m['p_toward_top_right'][side])}"


def _run_title(session: Session) -> str:
    return f"{session.checkpoint.name} ({session.mode})"


def _skip(skipped: list[dict[str, Any]], seed: int, error: SteerError, role: str | None = None) -> None:
    if role is None:
        skipped.append({"seed": seed, "reason": str(error)})
    else:  # transfer: a seed can be skipped as a source yet used as a target
        skipped.append({"seed": seed, "role": role, "reason": f"as a {role}: {error}"})


# -- compose --------------------------------------------------------------------------------------


def run_compose(
    spec: Spec, session: Session, out: Path, on_seed: OnSeed | None = None, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Add several vectors together; per seed a PNG row (original, each alone, all, diff) and metrics.json."""
    check_spec(spec, "compose")
    plans = tuple(
        plan_vector(session, spec, item.vector, item.coeff, f"vectors[{i}]", item.layer, item.label)
        for i, item in enumerate(spec.vectors)
    )
    layers = list(dict.fromkeys(p.layer for p in plans))
    prov = provenance(session, spec, ", ".join(layers))
    # Only once the vectors resolved: a bad spec leaves no folder behind.
    run = RunFolder.open(out, "compose", spec.raw, [f"seed-{s}" for s in spec.seeds], prov, force)
    results, skipped, reused = _run_cells(run, spec.seeds, ComposeJob(spec, run.path, plans), session, on_seed,
                                          workers)
    report = {
        "command": "compose",
        "spec": spec.raw,
        "provenance": prov,
        "vectors": [{"label": p.label, "kind": p.kind, "coeff": p.coeff, "layer": p.layer,
                     "source_seed": p.fixed.meta.get("source_seed") if p.fixed else None} for p in plans],
        "mazes": results,
        "skipped": skipped,
        "reused_cells": reused,
        "summary": {**summarize(results), "additivity_error": spread([m["additivity_error"] for m in results])},
    }
    run.complete(report)
    return report


@dataclass(frozen=True)
class ComposeJob:
    spec: Spec
    out: Path
    plans: tuple[VectorPlan, ...]

    def __call__(self, session: Session, seed: int) -> tuple[str, list[str], dict[str, Any]]:
        try:
            target = target_maze(session, self.spec, seed)
            vectors = [plan.for_target(session, self.spec, seed) for plan in self.plans]
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        m, img = _compose_seed(session, self.spec, seed, target, self.plans, vectors)
        name = f"compose-seed{seed}.png"
        save_png(img, self.out / name)
        return "done", [name], m


def _compose_seed(
    session: Session, spec: Spec, seed: int, target: Maze, plans: Sequence[VectorPlan],
    vectors: Sequence[SteeringVector],
) -> tuple[dict[str, Any], Image.Image]:
    policy, bs = session.policy, spec.batch_size
    inputs = FieldInputs.render(session.renderer, target, session.device)
    patches = [(plan.layer, vec.tensor, plan.coeff) for plan, vec in zip(plans, vectors, strict=True)]
    original = vector_field(policy, inputs, batch_size=bs)
    singles = [vector_field(policy, inputs, [patch], batch_size=bs) for patch in patches]
    together = vector_field(policy, inputs, patches, batch_size=bs)
    m = {
        "seed": seed,
        **maze_metrics(original, together),
        "additivity_error": additivity_error(original.probs, [s.probs for s in singles], together.probs),
        "joint_change_norm": float(np.linalg.norm(together.probs.astype(np.float64) - original.probs)),
        "singles": [
            {"label": plan.label, "source_seed": vec.meta.get("source_seed"), **effect_metrics(original, single)}
            for plan, vec, single in zip(plans, vectors, singles, strict=True)
        ],
    }
    title = f"seed {seed} · compose {' and '.join(p.label for p in plans)} · {_run_title(session)}"
    return m, _compose_figure(title, original, singles, together, plans, m)


def _compose_figure(
    title: str, original: VectorField, singles: Sequence[VectorField], together: VectorField,
    plans: Sequence[VectorPlan], m: dict[str, Any],
) -> Image.Image:
    maze, pos = original.maze, original.positions
    panels = [Panel(maze, pos, original.arrows, "original\n" + _headline(maze, m, "original"))]
    for plan, single, s in zip(plans, singles, m["singles"], strict=True):
        panels.append(Panel(maze, pos, single.arrows, f"{plan.label} alone\n{_single_caption(maze, m, s)}"))
    panels.append(Panel(maze, pos, together.arrows, "all together\n" + _headline(maze, m, "patched")))
    panels.append(Panel(maze, pos, together.arrows - original.arrows,
                        f"all - original\nadditivity error {_fmt(m['additivity_error'])}", color=DIFF_RGB))
    layers = ", ".join(dict.fromkeys(f"{p.label} at {p.layer}" for p in plans))
    return figure(title, panels, footer=f"{layers} · {LEGEND}")


def _single_caption(maze: Maze, m: dict[str, Any], single: dict[str, Any]) -> str:
    return _headline(maze, {**single, "decision_square": m["decision_square"]}, "patched")


# -- sweep-coeff ----------------------------------------------------------------------------------

SWEEP_CHARTS: tuple[tuple[str, str], ...] = (
    ("p_cheese_ds", "P(cheese | decision square)"),
    ("p_top_right_ds", "P(top-right | decision square)"),
    ("p_toward_cheese", "mean P(step toward cheese)"),
    ("p_toward_top_right", "mean P(step toward top-right)"),
    ("mean_tv", "mean TV distance from original"),
    ("entropy", "mean action entropy (nats)"),
    ("wall_mass", "mean P(move into a wall)"),
)


def run_sweep(
    spec: Spec, session: Session, out: Path, on_seed: OnSeed | None = None, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """One vector at each coefficient of `coeffs`: per-maze metrics, a field grid, metric-vs-coefficient charts."""
    check_spec(spec, "sweep-coeff")
    assert spec.vector is not None
    plan = plan_vector(session, spec, spec.vector, 1.0, "vector")
    prov = provenance(session, spec, plan.layer)
    run = RunFolder.open(out, "sweep-coeff", spec.raw, [f"seed-{s}" for s in spec.seeds], prov, force)
    job = SweepJob(spec, run.path, plan, grid_seeds=frozenset(spec.grid_seeds or spec.seeds[:1]))
    results, skipped, reused = _run_cells(run, spec.seeds, job, session, on_seed, workers)
    summary = _sweep_summary(spec.coeffs, results)
    report = {
        "command": "sweep-coeff",
        "spec": spec.raw,
        "provenance": prov,
        "vector": {"kind": plan.kind, "layer": plan.layer,
                   "source_seed": plan.fixed.meta.get("source_seed") if plan.fixed else None},
        "coeffs": list(spec.coeffs),
        "mazes": results,
        "skipped": skipped,
        "reused_cells": reused,
        "summary": summary,
    }
    figures = []
    if results:
        figures.append("sweep-metrics.png")
        save_png(_sweep_chart(session, plan, spec.coeffs, summary), run.path / figures[0])
    # Grids are drawn per seed as its cell finishes; a grid seed that was skipped has none.
    report["figures"] = [f"sweep-fields-seed{m['seed']}.png" for m in results if m["seed"] in job.grid_seeds]
    report["figures"] += figures
    run.complete(report, figures=figures)
    return report


@dataclass(frozen=True)
class SweepJob:
    spec: Spec
    out: Path
    plan: VectorPlan
    grid_seeds: frozenset[int]  # the mazes whose fields are drawn across coefficients

    def __call__(self, session: Session, seed: int) -> tuple[str, list[str], dict[str, Any]]:
        try:
            target = target_maze(session, self.spec, seed)
            vec = self.plan.for_target(session, self.spec, seed)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        entry, fields = _sweep_seed(session, self.spec, seed, target, self.plan, vec)
        files = []
        if seed in self.grid_seeds:
            files.append(f"sweep-fields-seed{seed}.png")
            save_png(_sweep_grid(session, self.plan, entry, fields), self.out / files[0])
        return "done", files, entry


def _sweep_seed(
    session: Session, spec: Spec, seed: int, target: Maze, plan: VectorPlan, vec: SteeringVector
) -> tuple[dict[str, Any], list[VectorField]]:
    """Fields at every coefficient (the original first); the prefix up to the layer runs once."""
    policy, bs = session.policy, spec.batch_size
    inputs = FieldInputs.render(session.renderer, target, session.device)
    # The prefix up to the layer runs once; the original and every coefficient share one batched suffix.
    original, *fields = vector_fields(policy, inputs, plan.layer, [None, *(c * vec.tensor for c in spec.coeffs)], bs)
    by_coeff = [{"coeff": c, **effect_metrics(original, f), "entropy": mean_entropy(f), "wall_mass": wall_mass(f)}
                for c, f in zip(spec.coeffs, fields, strict=True)]
    first = maze_metrics(original, original)  # the maze's own keys and the unpatched side of each metric
    entry = {
        "seed": seed,
        **{k: first[k] for k in MAZE_KEYS},
        "vector_source_seed": vec.meta.get("source_seed"),
        "original": {"entropy": mean_entropy(original), "wall_mass": wall_mass(original),
                     **{k: first[k]["original"] for k in ("p_cheese_ds", "p_top_right_ds", "p_toward_cheese",
                                                          "p_toward_top_right")}},
        "by_coeff": by_coeff,
    }
    return entry, [original, *fields]


def _sweep_summary(coeffs: Sequence[float], mazes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    per_coeff = []
    for i, c in enumerate(coeffs):
        rows = [{**{k: m[k] for k in MAZE_KEYS}, **m["by_coeff"][i]} for m in mazes]
        per_coeff.append({"coeff": c, **summarize(rows), "entropy": spread([r["entropy"] for r in rows]),
                          "wall_mass": spread([r["wall_mass"] for r in rows])})
    bands = {}
    for key, _ in SWEEP_CHARTS:
        at = [spread([_patched(m["by_coeff"][i][key]) for m in mazes]) for i in range(len(coeffs))]
        original = spread([0.0 if key == "mean_tv" else m["original"][key] for m in mazes])
        bands[key] = {"median": [s["median"] for s in at], "q25": [s["q25"] for s in at],
                      "q75": [s["q75"] for s in at], "n": [s["n"] for s in at], "original_median": original["median"]}
    return {"mazes": len(mazes), "by_coeff": per_coeff, "bands": bands}


def _patched(value: Any) -> float | None:
    """A metric's value under the patch: maze_metrics stores some as {original, patched}."""
    return value["patched"] if isinstance(value, dict) else value


def _sweep_grid(
    session: Session, plan: VectorPlan, entry: dict[str, Any], fields: Sequence[VectorField]
) -> Image.Image:
    original = fields[0]
    panels = [Panel(original.maze, original.positions, original.arrows, f"original\n{_signals(entry['original'])}")]
    for m, f in zip(entry["by_coeff"], fields[1:], strict=True):
        caption = f"coeff {m['coeff']:g} · TV {_fmt(m['mean_tv'])}\n{_signals(m)}"
        panels.append(Panel(f.maze, f.positions, f.arrows, caption))
    title = (f"seed {entry['seed']} · {plan.kind} vector at {plan.layer} over coefficients · "
             f"{_run_title(session)}")
    footer = f"H: mean action entropy (nats) · wall: mean P(move into a wall) · TV: mean TV from original · {LEGEND}"
    widest = 4 if original.maze.maze_dim > 9 else 6  # big mazes draw wide panels
    rows = -(-len(panels) // widest)
    return grid_figure(title, panels, -(-len(panels) // rows), footer=footer)  # rows as even as they can be


def _signals(m: dict[str, Any]) -> str:
    return f"H {_fmt(m['entropy'])} · wall {_fmt(m['wall_mass'])}"


def _sweep_chart(session: Session, plan: VectorPlan, coeffs: Sequence[float], summary: dict[str, Any]) -> Image.Image:
    series = []
    for key, label in SWEEP_CHARTS:
        b = summary["bands"][key]
        if not any(n for n in b["n"]):
            continue  # e.g. cheese metrics on cheese-removed mazes
        series.append(BandSeries(label, b["median"], b["q25"], b["q75"], b["n"], b["original_median"]))
    uneven = len({round(b - a, 9) for a, b in itertools.pairwise(coeffs)}) > 1
    footer = "dashed: median of the original (unpatched) policy"
    if uneven:
        footer += " · coefficients are evenly spaced on the x axis, not to scale"
    title = f"{plan.kind} vector at {plan.layer} · {summary['mazes']} mazes · {_run_title(session)}"
    return band_charts(title, [f"{c:g}" for c in coeffs], series, footer=footer)


# -- transfer -------------------------------------------------------------------------------------

TRANSFER_MATRICES = ("p_cheese_ds", "p_toward_top_right", "p_toward_cheese", "p_top_right_ds")
EFFECT_METRIC = {"cheese": "p_cheese_ds", "top_right": "p_toward_top_right"}


@dataclass(frozen=True)
class Source:
    seed: int
    maze: Maze
    vector: SteeringVector


def run_transfer(
    spec: Spec, session: Session, out: Path, on_seed: OnSeed | None = None, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """Each source seed's vector on each target seed: a source × target effect matrix, heat map and fields."""
    check_spec(spec, "transfer")
    assert spec.vector is not None and spec.vector.pair is not None and spec.coeff is not None
    source_seeds, target_seeds = transfer_seeds(spec)
    layer = resolve_layer(session.policy, spec.layer, "layer")
    pair = spec.vector.pair
    skipped: list[dict[str, Any]] = []
    sources: dict[int, Source] = {}
    for seed in source_seeds:
        try:
            maze, vector = target_maze(session, spec, seed), build_vector(session, spec, seed, pair, layer)
        except SteerError as e:
            _skip(skipped, seed, e, role="source")
        else:
            sources[seed] = Source(seed, maze, vector)
    prov = provenance(session, spec, layer)
    run = RunFolder.open(out, "transfer", spec.raw, [f"seed-{s}" for s in target_seeds], prov, force)
    job = TransferJob(spec, run.path, sources, layer)
    done, target_skips, reused = _run_cells(run, target_seeds, job, session, on_seed, workers)
    skipped += [{**t, "role": "target", "reason": f"as a target: {t['reason']}"} for t in target_skips]
    pairs = [p for d in done for p in d["pairs"]]
    figures = [f for d in done for f in d["figures"]]
    mazes = {seed: src.maze for seed, src in sources.items()}
    info = {d["seed"]: d["maze"] for d in done}
    info.update({seed: _maze_info(seed, maze) for seed, maze in mazes.items()})
    metric = EFFECT_METRIC.get(pair.kind, "mean_tv")
    matrices = _matrices(source_seeds, target_seeds, pairs, metric)
    report = {
        "command": "transfer",
        "spec": spec.raw,
        "provenance": prov,
        "vector": {"kind": pair.kind, "layer": layer, "coeff": spec.coeff},
        "sources": list(source_seeds),
        "targets": list(target_seeds),
        "mazes": [info[seed] for seed in sorted(info)],
        "effect_metric": metric,
        "matrices": matrices,
        "pairs": pairs,
        "figures": figures,
        "skipped": skipped,
        "reused_cells": reused,
    }
    heat = _transfer_heatmap(session, spec, pair.kind, sources, source_seeds, target_seeds, info, matrices, metric)
    save_png(heat, run.path / "transfer-matrix.png")
    run.complete(report, figures=["transfer-matrix.png"])
    return report


def _maze_info(seed: int, maze: Maze) -> dict[str, Any]:
    return {"seed": seed, "maze_dim": maze.maze_dim, "cheese": _listed(maze.cheese),
            "decision_square": _listed(maze.decision_square())}


@dataclass(frozen=True)
class TransferJob:
    """Every source vector on one target maze."""

    spec: Spec
    out: Path
    sources: dict[int, Source]
    layer: str

    def __call__(self, session: Session, seed: int) -> tuple[str, list[str], dict[str, Any]]:
        try:
            target = target_maze(session, self.spec, seed)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        figures: list[str] = []
        pairs = _transfer_target(session, self.spec, seed, target, self.sources, self.layer, self.out, figures)
        return "done", figures, {"seed": seed, "maze": _maze_info(seed, target), "pairs": pairs, "figures": figures}


def _transfer_target(
    session: Session, spec: Spec, seed: int, target: Maze, sources: dict[int, Source], layer: str, out: Path,
    figures: list[str],
) -> list[dict[str, Any]]:
    """Every source vector on one target; the target's prefix up to the layer runs once."""
    assert spec.coeff is not None
    policy, bs = session.policy, spec.batch_size
    inputs = FieldInputs.render(session.renderer, target, session.device)
    deltas = [None, *(spec.coeff * src.vector.tensor for src in sources.values())]
    original, *patched_fields = vector_fields(policy, inputs, layer, deltas, bs)
    rows = []
    for src, patched in zip(sources.values(), patched_fields, strict=True):
        m = maze_metrics(original, patched)
        rows.append({
            "source": src.seed,
            "target": seed,
            "same_maze_dim": src.maze.maze_dim == target.maze_dim,
            "same_cheese": src.maze.cheese == target.cheese,
            "source_maze_dim": src.maze.maze_dim,
            "source_cheese": _listed(src.maze.cheese),
            **{f"target_{k}": m[k] for k in MAZE_KEYS},
            **{f"delta_{k}": _delta(m[k]) for k in TRANSFER_MATRICES},
            "mean_tv": m["mean_tv"],
            "metrics": {k: m[k] for k in m if k not in MAZE_KEYS},
        })
        if (src.seed, seed) in spec.show:
            name = f"transfer-src{src.seed}-tgt{seed}.png"
            save_png(_pair_figure(session, spec, src, seed, original, patched, m), out / name)
            figures.append(name)
    return rows


def _listed(square: Square | None) -> list[int] | None:
    return list(square) if square is not None else None


def _delta(value: dict[str, float | None]) -> float | None:
    before, after = value["original"], value["patched"]
    return None if before is None or after is None else after - before


def _matrices(sources: Sequence[int], targets: Sequence[int], pairs: Sequence[dict[str, Any]],
              metric: str) -> dict[str, Any]:
    """Source × target matrices (rows: sources) of each effect; None where undefined or skipped."""
    by_pair = {(p["source"], p["target"]): p for p in pairs}

    def matrix(key: str) -> list[list[Any]]:
        return [[by_pair[(s, t)][key] if (s, t) in by_pair else None for t in targets] for s in sources]

    effect_key = "mean_tv" if metric == "mean_tv" else f"delta_{metric}"
    return {
        "rows": "sources",
        "effect": matrix(effect_key),
        **{f"delta_{k}": matrix(f"delta_{k}") for k in TRANSFER_MATRICES},
        "mean_tv": matrix("mean_tv"),
        "same_maze_dim": matrix("same_maze_dim"),
        "same_cheese": matrix("same_cheese"),
    }


def _pair_figure(session: Session, spec: Spec, src: Source, seed: int, original: VectorField,
                 patched: VectorField, m: dict[str, Any]) -> Image.Image:
    maze = original.maze
    panels = [
        Panel(maze, original.positions, original.arrows, "original\n" + _headline(maze, m, "original")),
        Panel(maze, patched.positions, patched.arrows,
              f"with seed {src.seed}'s vector\n" + _headline(maze, m, "patched")),
        Panel(maze, original.positions, patched.arrows - original.arrows,
              f"difference (patched - original)\nmean TV distance {m['mean_tv']:.2f}", color=DIFF_RGB),
    ]
    same = [what for what, ok in (("maze size", src.maze.maze_dim == maze.maze_dim),
                                  ("cheese square", src.maze.cheese == maze.cheese)) if ok]
    title = (f"seed {src.seed}'s {src.vector.kind} vector -> seed {seed} · coeff {spec.coeff:g} · "
             f"{src.vector.layer} · {_run_title(session)}")
    footer = f"same {' and '.join(same)} as the source · {LEGEND}" if same else LEGEND
    return figure(title, panels, footer=footer)


METRIC_LABELS = {
    "p_cheese_ds": "change in P(cheese | decision square)",
    "p_toward_top_right": "change in mean P(step toward top-right)",
    "mean_tv": "mean TV distance from original",
}


def _transfer_heatmap(session: Session, spec: Spec, kind: str, sources: dict[int, Source], source_seeds: Sequence[int],
                      target_seeds: Sequence[int], mazes: dict[int, dict[str, Any]], matrices: dict[str, Any],
                      metric: str) -> Image.Image:
    def label(seed: int, skipped: bool) -> str:
        dim = mazes[seed]["maze_dim"] if seed in mazes else None
        return f"seed {seed} (skipped)" if skipped else f"seed {seed} ({dim}x{dim})"

    rows = [label(s, s not in sources) for s in source_seeds]
    columns = [label(t, t not in mazes) for t in target_seeds]
    notes = [[_pair_note(matrices, i, j) for j in range(len(target_seeds))] for i in range(len(source_seeds))]
    title = (f"{kind} vectors across mazes · coeff {spec.coeff:g} · {METRIC_LABELS[metric]} · "
             f"{_run_title(session)}")
    footer = ("n/a: undefined for that target (e.g. no decision square) or a skipped seed\n"
              "same dim: source and target mazes have the same size · same cheese: the cheese is on the same square")
    return heatmap(title, rows, columns, matrices["effect"], notes,
                   axis_titles=("source (vector from)", "target (applied to)"), footer=footer)


def _pair_note(matrices: dict[str, Any], i: int, j: int) -> str:
    same = [w for w, key in (("dim", "same_maze_dim"), ("cheese", "same_cheese")) if matrices[key][i][j]]
    return f"same {' + '.join(same)}" if same else ""


# -- layer sweep ----------------------------------------------------------------------------------


def sweep_layers(spec: Spec, policy: Any) -> tuple[str, ...]:
    """The spec's layers, or every hook point except the value head (it cannot change the actions)."""
    if not spec.layers:
        return tuple(name for name in policy.hook_names if name != "fc_value")
    return tuple(resolve_layer(policy, name, f"layers[{i}]") for i, name in enumerate(spec.layers))


def run_layer_sweep(
    spec: Spec, session: Session, out: Path, on_seed: OnSeed | None = None, force: bool = False, workers: int = 1
) -> dict[str, Any]:
    """The same vector kind computed and applied at each layer; its effect per layer, over the seeds."""
    check_spec(spec, "layer-sweep")
    assert spec.vector is not None and spec.vector.pair is not None and spec.coeff is not None
    layers = sweep_layers(spec, session.policy)
    prov = provenance(session, spec, ", ".join(layers))
    run = RunFolder.open(out, "layer-sweep", spec.raw, [f"seed-{s}" for s in spec.seeds], prov, force)
    job = LayerSweepJob(spec, layers)
    results, skipped, reused = _run_cells(run, spec.seeds, job, session, on_seed, workers)
    per_layer = []
    for i, layer in enumerate(layers):
        rows = [{**{k: m[k] for k in MAZE_KEYS}, **m["by_layer"][i]} for m in results]
        per_layer.append({"layer": layer, **summarize(rows)})
    report = {
        "command": "layer-sweep",
        "spec": spec.raw,
        "provenance": prov,
        "vector": {"kind": spec.vector.pair.kind, "coeff": spec.coeff},
        "layers": list(layers),
        "mazes": results,
        "skipped": skipped,
        "reused_cells": reused,
        "summary": {"mazes": len(results), "by_layer": per_layer},
    }
    figures = []
    if results:
        figures.append("layer-sweep.png")
        save_png(_layer_chart(session, spec, per_layer), run.path / figures[0])
    run.complete(report, figures=figures)
    return report


@dataclass(frozen=True)
class LayerSweepJob:
    """One maze: its own vector at every layer, each applied alone; the observations are rendered once."""

    spec: Spec
    layers: tuple[str, ...]

    def __call__(self, session: Session, seed: int) -> tuple[str, list[str], dict[str, Any]]:
        spec = self.spec
        assert spec.vector is not None and spec.vector.pair is not None and spec.coeff is not None
        try:
            target = target_maze(session, spec, seed)
            vectors = [build_vector(session, spec, seed, spec.vector.pair, layer) for layer in self.layers]
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        policy, bs = session.policy, spec.batch_size
        inputs = FieldInputs.render(session.renderer, target, session.device)
        original = vector_field(policy, inputs, batch_size=bs, reuse_from=None)
        by_layer = []
        for layer, vec in zip(self.layers, vectors, strict=True):
            patched = vector_field(policy, inputs, [(layer, vec.tensor, spec.coeff)], batch_size=bs)
            by_layer.append({"layer": layer, "vector_norm": float(vec.tensor.norm()),
                             **effect_metrics(original, patched)})
        first = maze_metrics(original, original)
        return "done", [], {"seed": seed, **{k: first[k] for k in MAZE_KEYS}, "by_layer": by_layer}


def _layer_chart(session: Session, spec: Spec, per_layer: Sequence[dict[str, Any]]) -> Image.Image:
    assert spec.vector is not None and spec.vector.pair is not None
    labels = [row["layer"] for row in per_layer]
    ds = [row["p_cheese_ds"]["patched"]["median"] for row in per_layer]
    original = per_layer[0]["p_cheese_ds"]["original"]["median"] if per_layer else None
    if any(v is not None for v in ds):
        values, what = ds, "median P(cheese | decision square)"
    else:  # e.g. top-right vectors on cheese-removed mazes: no decision squares
        values = [row["p_toward_top_right"]["patched"]["median"] for row in per_layer]
        original = per_layer[0]["p_toward_top_right"]["original"]["median"] if per_layer else None
        what = "median mean P(step toward top-right)"
    n = per_layer[0]["mazes"] if per_layer else 0
    title = (f"{spec.vector.pair.kind} vector x {spec.coeff:g} at each layer · {what} · {n} mazes · "
             f"{_run_title(session)}")
    footer = "dashed: the unpatched policy · highlighted: the default layer block2.res1.resadd_out"
    return bar_rows(title, labels, values, reference=original, footer=footer, highlight=DEFAULT_LAYER)
