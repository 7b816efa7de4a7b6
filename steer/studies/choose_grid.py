"""`steer choose`'s first stage, a study of its own (`GRID`, `choose-grid`) run into `OUT/grid/`: every setting of
the grid (site x coefficient) and the reference setting on each discovery maze, summarised with intervals, the
limits applied and the setting chosen (`steer.analysis.choose`). Its plan is also the command's `plan`: the
vector is built at every site here, from the discovery mazes alone, before anything is written. A module of its
own because it is a study of its own; the name repeats along the layers (docs/layout.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.analysis.choose import Goal, Network, Setting, choose, damages_measured, grid_rows, measure_maze
from steer.analysis.metrics import maze_info
from steer.errors import SteerError, excerpt
from steer.net.vectors import SteeringVector, apply_edits
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table, maze_keys
from steer.run.session import Session, resolve_layer
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.run.vector_plan import plan_vector
from steer.studies.choose_spec import DEFAULT_LAYERS, ChooseOptions, check, goal_of, reference_of


@dataclass(frozen=True)
class ChoosePlan:
    """The grid's work: one fixed vector per site (built before any maze is measured), the settings searched,
    the reference setting and the goal."""

    spec: Spec
    kind: str
    vectors: dict[str, SteeringVector]  # site (display name) -> its vector, unscaled
    vector: dict[str, Any]  # how the vector was made, for the report
    settings: tuple[Setting, ...]  # the grid: sites in the spec's order, then coefficients
    reference: Setting
    goal: Goal

    @property
    def layer(self) -> str:
        return ", ".join(self.vectors)

    @property
    def damages(self) -> tuple[str, ...]:
        return damages_measured(self.goal, bool(self.spec.options.unaffected))

    def measure(self, session: Session, seed: int, settings: Sequence[Setting]) -> dict[str, Any]:
        """One maze's records of `settings` (setting label -> record) and the maze's own keys."""
        maze = session.target_maze(self.spec, seed)
        edits = self.spec.options.unaffected
        unaffected = apply_edits(maze, edits) if edits else None
        net = Network(session.policy, session.renderer, session.device, self.spec.batch_size)
        tensors = {site: v.tensor for site, v in self.vectors.items()}
        return {
            "seed": seed,
            **maze_info(maze),
            "records": measure_maze(net, maze, unaffected, tensors, settings, self.goal),
        }

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        settings = tuple(dict.fromkeys((*self.settings, self.reference)))
        return "done", [], self.measure(session, seed, settings)


def _sites(session: Session, spec: Spec) -> tuple[str, ...]:
    names = spec.options.layers or DEFAULT_LAYERS
    where = "layers" if spec.options.layers else "layers (the default)"
    return tuple(dict.fromkeys(resolve_layer(session.policy, n, f"{where}[{i}]") for i, n in enumerate(names)))


def plan(spec: Spec, session: Session) -> ChoosePlan:
    """The vector at every candidate site and the reference's: a file's at its own site only, a source seed's or
    a mean's as given, and a bare kind as the mean of its pair over the discovery mazes (one vector to save and
    share, never each maze's own, and never built from a replication maze)."""
    o: ChooseOptions = spec.options
    vspec = o.vector
    if vspec.file is not None or vspec.feature is not None:
        vp = plan_vector(session, spec, vspec, 1.0, "vector")
        if vp.fixed is None:  # a feature at each maze's own square: there is no one vector to choose a setting for
            raise SteerError(
                f"vector.feature.at: choose picks a setting of one vector, and a feature at each maze's "
                f"{vspec.feature and vspec.feature.at} is a different vector on every maze; give positions: "
                "[[r, c]], at: everywhere or a fixed square [row, col]."
            )
        site, kind = vp.layer, vp.kind
        source = vspec.file if vspec.feature is None else vspec.feature.file  # the one file the vector comes from
        for i, name in enumerate(o.layers):
            if resolve_layer(session.policy, name, f"layers[{i}]") != site:
                raise SteerError(
                    f"layers[{i}]: {excerpt(name)} is not {site}, the only site the vector file "
                    f"{excerpt(str(source), 160)} holds a vector for; give layers: [{site}], or the vector as a "
                    "kind ({kind: ...}) so that it is built at every site."
                )
        reference = reference_of(spec, kind)
        ref_site = resolve_layer(session.policy, reference.site, "compare_with.layer")
        if ref_site != site:
            raise SteerError(
                f"compare_with.layer: the reference site {ref_site} is not {site}, the vector file's only site; give "
                f"compare_with: {{layer: {site}}}, or the vector as a kind so that it is built at both."
            )
        vectors, described = {site: vp.fixed}, vp.describe()
        sites: tuple[str, ...] = (site,)
    else:
        assert vspec.pair is not None
        kind = vspec.pair.kind
        if vspec.source_seed is None and vspec.source_seeds is None:
            vspec = dataclasses.replace(vspec, source_seeds=spec.seeds)
        sites = _sites(session, spec)
        reference = reference_of(spec, kind)
        ref_site = resolve_layer(session.policy, reference.site, "compare_with.layer")
        vectors, described = {}, {}
        for site in dict.fromkeys((*sites, ref_site)):
            vp = plan_vector(session, spec, vspec, 1.0, "vector", layer=site)
            assert vp.fixed is not None
            vectors[site] = vp.fixed
            described = described or {k: v for k, v in vp.describe().items() if k not in ("layer", "coeff")}
    settings = tuple(Setting(s, c) for s in sites for c in o.coeffs)
    return ChoosePlan(spec, kind, vectors, described, settings, Setting(ref_site, reference.coeff), goal_of(spec, kind))


def grid_summary(plan: ChoosePlan, done: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The grid over the discovery mazes, the reference setting's row and the choice."""
    per_maze = [m["records"] for m in done]
    rows = grid_rows(per_maze, plan.settings, plan.goal, plan.damages)
    (reference,) = grid_rows(per_maze, (plan.reference,), plan.goal, plan.damages)
    chosen = choose(rows)
    return {
        "grid": rows,
        "reference": reference,
        "chosen": None if chosen is None else rows[chosen],
        "feasible": sum(r["feasible"] for r in rows),
        "mazes_looked_at": [m["seed"] for m in done],
    }


def report(
    plan: ChoosePlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    done = list(done)
    return Report({"choice": grid_summary(plan, done), "mazes": done})


GRID_MAZES = Table(
    "mazes",
    "one row per discovery maze and setting (the grid's and the reference's): the target and each damage measure",
    (
        SEED,
        *MAZE_COLUMNS,
        Column("setting", "str", "", "site x coefficient"),
        Column("target", "str", "", "the target metric (a registry metric)"),
        Column("target_original", "float", "", "the target, unpatched"),
        Column("target_patched", "float", "", "the target with the setting's coefficient x the vector at its site"),
        *(
            Column(f"{name}_{side}", "float", unit, f"{about}, {side}")
            for name, unit, about in (
                ("wall_mass", "probability", "mean P(move into a wall)"),
                ("entropy", "nats", "mean action entropy"),
                ("mean_steps", "steps", "expected episode length (exact chain; empty unless measured)"),
                ("steps_to_cheese", "steps", "expected steps to the cheese if reached (exact chain)"),
                ("p_timeout", "probability", "P(the episode times out) = 1 - P(reach the cheese) (exact chain)"),
            )
            for side in ("original", "patched")
        ),
        Column("mean_tv_unaffected", "float", "TV, 0 to 1", "mean TV on the unaffected variant (empty without one)"),
    ),
)


def record_row(target: str, rec: Mapping[str, Any]) -> dict[str, Any]:
    """A setting's record on one maze as a row's measure columns."""
    row: dict[str, Any] = {
        "target": target,
        "target_original": rec[target]["original"],
        "target_patched": rec[target]["patched"],
        "mean_tv_unaffected": rec.get("mean_tv_unaffected"),
    }
    for name in ("wall_mass", "entropy", "mean_steps", "steps_to_cheese", "p_timeout"):
        for side in ("original", "patched"):
            row[f"{name}_{side}"] = (rec.get(name) or {}).get(side)
    return row


def grid_maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    target = f.plan.goal.target
    for m in f.done:
        keys = {"seed": m["seed"], **maze_keys(m)}
        for label, rec in m["records"].items():
            yield {**keys, "setting": label, **record_row(target, rec)}


GRID = Study(
    name="choose-grid",
    help="steer choose's grid: every site and coefficient on the discovery mazes, the limits applied, one chosen.",
    options=ChooseOptions,
    check=check,
    plan=plan,
    report=report,
    grows=False,  # a bare kind's vector is the mean over every discovery maze: more mazes, another vector
    tables=(StudyTable(GRID_MAZES, grid_maze_rows),),
)


__all__ = ["GRID", "GRID_MAZES", "ChoosePlan", "grid_summary", "plan", "record_row"]
