"""`steer features`' first stage, into `OUT/corpus/`: each corpus maze's rows at the site, one file per maze.

A cell renders the maze's states as the chain sees them (every open square but the cheese's, both facings) with the
cheese kept and removed, runs the network to the site and keeps a `fraction` of the states' positions, drawn
without replacement and seeded by the fit seed and the maze's seed:
`corpus-seed{N}.npz` (array `x`, (rows, channels), float32). The fit (`steer.studies.features`) reads them in seed
order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from steer.analysis.features import corpus_rows
from steer.io import atomic_write_bytes
from steer.net.sae import TopKSAE
from steer.run.session import Session
from steer.run.specs import Spec
from steer.run.study import CellResult, Report, Study
from steer.studies.activations import npz_bytes
from steer.studies.features_spec import FeaturesOptions, check, corpus_seeds, site_of


def corpus_filename(seed: int) -> str:
    return f"corpus-seed{seed}.npz"


def read_corpus_file(path: Path) -> np.ndarray:
    with np.load(path) as data:
        return np.asarray(data["x"], dtype=np.float32)


@dataclass(frozen=True)
class Fitted:
    """A dictionary the held-out cells measure: its module and the metadata its file carries."""

    k: int
    sae: TopKSAE
    meta: dict[str, str]
    sha256: str  # of its file's bytes: each held-out cell records it, so a resumed run cannot mix dictionaries


@dataclass(frozen=True)
class CorpusPlan:
    spec: Spec
    site: str  # display name
    given: Fitted | None = None  # a dictionary file to measure (no corpus, no fit)

    @property
    def layer(self) -> str:
        return self.site

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        options: FeaturesOptions = self.spec.options
        maze = session.target_maze(self.spec, seed)
        rows, states = corpus_rows(
            session.policy,
            session.renderer,
            maze,
            self.site,
            options.fraction,
            # one stream per (fit seed, maze): a maze's draw does not depend on which other mazes are in the corpus
            int(np.random.SeedSequence([options.seed, seed]).generate_state(1)[0]),
            self.spec.batch_size,
        )
        name = corpus_filename(seed)
        atomic_write_bytes(out / name, npz_bytes(rows))
        return "done", [name], {"seed": seed, "maze_dim": maze.maze_dim, "rows": len(rows), "positions": states}


def corpus_plan(spec: Spec, session: Session) -> CorpusPlan:
    return CorpusPlan(spec, site_of(spec, session))


def corpus_report(
    plan: CorpusPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    chunks = [{"seed": c["seed"], "rows": c["rows"], "file": corpus_filename(c["seed"])} for c in done]
    return Report(
        {
            "site": plan.site,
            "rows": sum(c["rows"] for c in chunks),
            "positions": sum(c["positions"] for c in done),
            "chunks": chunks,
        }
    )


CORPUS = Study(
    name="features-corpus",
    help="steer features' corpus: each corpus maze's positions at the site, with the cheese kept and removed.",
    options=FeaturesOptions,
    check=check,
    plan=corpus_plan,
    report=corpus_report,
    cells=corpus_seeds,
)


__all__ = ["CORPUS", "CorpusPlan", "Fitted", "corpus_filename", "read_corpus_file"]
