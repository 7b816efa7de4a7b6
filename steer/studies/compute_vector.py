"""`steer compute-vector`: one vector file per seed (the pair built from that seed's maze), and vectors.json.

The files are safetensors with their metadata in the header, readable without steer (`steer/net/vector_files.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from steer.errors import SteerError
from steer.net.vectors import PairSpec
from steer.report.tables import SEED, Column, Table
from steer.run.options import Options, vector_option
from steer.run.session import Session, resolve_layer
from steer.run.spec_values import VectorSpec
from steer.run.specs import Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.run.vector_plan import build_vector


def vector_filename(kind: str, seed: int) -> str:
    return f"vector-{kind}-seed{seed}.safetensors"


@dataclass(frozen=True, kw_only=True)
class ComputeVectorOptions(Options):
    vector: VectorSpec = vector_option(
        missing="vector: missing; compute-vector needs an inline vector spec, e.g. vector: {kind: cheese}."
    )


def check(spec: Spec) -> None:
    vector = spec.options.vector
    if vector.pair is None:
        raise SteerError("vector: compute-vector needs an inline vector spec, e.g. vector: {kind: cheese}.")
    if vector.source_seed is not None:
        raise SteerError(
            "vector.source_seed: compute-vector makes a vector from each seed in `seeds`; list the source seed "
            "there instead."
        )
    if vector.source_seeds is not None:
        raise SteerError(
            "vector.source_seeds: compute-vector writes one vector per seed in `seeds`, not a mean; apply the mean "
            "directly by giving source_seeds in the `vector` of apply, sweep-coeff, behaviour or dose-response."
        )


@dataclass(frozen=True)
class Plan:
    spec: Spec
    pair: PairSpec
    layer: str

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        try:
            vec = build_vector(session, self.spec, seed, self.pair, self.layer)
        except SteerError as e:
            return "skipped", [], {"seed": seed, "reason": str(e)}
        name = vector_filename(vec.kind, seed)
        vec.save(out / name)
        return "done", [name], {"seed": seed, "file": name, "norm": float(vec.tensor.norm())}


def plan(spec: Spec, session: Session) -> Plan:
    pair = spec.options.vector.pair
    assert pair is not None  # check() refused a vector file
    return Plan(spec, pair, resolve_layer(session.policy, spec.effective_layer, "layer"))


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    return Report({"vectors": done})


def summary(report: dict[str, Any]) -> list[str]:
    return [f"{len(report['vectors'])} vectors at {report['provenance']['layer']}"]


MAZES = Table(
    "mazes",
    "one row per maze a vector was computed on",
    (
        SEED,
        Column("file", "str", "", "the vector file in the run folder"),
        Column("vector_norm", "float", "", "the vector's norm"),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for v in f.done:
        yield {"seed": v["seed"], "file": v["file"], "vector_norm": v["norm"]}


STUDY = Study(
    name="compute-vector",
    help="Compute steering vectors (activation differences of paired mazes) and save them as files.",
    options=ComputeVectorOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    report_name="vectors.json",
    tables=(StudyTable(MAZES, maze_rows),),
)
