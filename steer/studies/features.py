"""`steer features`: fit a sparse dictionary of the policy's activations at a conv site, and judge it on held-out
mazes, reconstruction and behaviour exactly.

Three steps, resumable:

1. **corpus** (`OUT/corpus/`, a stage of its own: `steer.studies.features_corpus`): each corpus maze's positions at
   the site, with the cheese kept and removed.
2. **fit** (a report-level step between the stages): a per-position TopK SAE for each k (`steer.net.sae`), seeded,
   on one thread, saved to `OUT/fit/dictionary-k{k}.safetensors` with its metadata; a resumed run reuses a saved
   fit whose inputs (the corpus files' bytes, the settings, the site, the checkpoint) are unchanged.
3. **held-out** (this run's cells, `seeds`): per maze, each dictionary's reconstruction quality (sums for variance
   explained, L0, features that fired) and its behavioural faithfulness: the site replaced by its reconstruction,
   the change in exact P(reach the cheese) and the mean total variation of the action distributions.

`metrics.json` holds the quality per dictionary (`steer.analysis.features_summary`), `mazes.csv` one row per
held-out maze and dictionary, `dictionary.safetensors` the default dictionary (`dictionary-k{k}.safetensors` the
others), `tradeoff.png` the sparsity trade-off when several k were fitted. With `dictionary: FILE` no corpus or fit
runs: that file is measured (refused when it was fitted with another checkpoint or at another site).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from steer.analysis.features import maze_faithfulness
from steer.analysis.features_summary import TARGETS, dictionary_summary, quality_of
from steer.analysis.metrics import fmt
from steer.io import atomic_write_bytes
from steer.net.dictionary_files import (
    DictionaryMeta,
    check_dictionary,
    dictionary_bytes,
    read_dictionary,
)
from steer.net.sae import FitSettings, fit
from steer.report.features_figs import tradeoff_chart
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table
from steer.run.cores import one_thread
from steer.run.session import Session
from steer.run.specs import Spec
from steer.run.study import STAGE_FOLDER, CellResult, Finished, Report, StageRunner, Study, StudyTable
from steer.studies.features_corpus import CORPUS, CorpusPlan, Fitted, read_corpus_file
from steer.studies.features_spec import FeaturesOptions, all_ks, check, corpus_seeds, site_of


@dataclass(frozen=True)
class HeldOutPlan:
    spec: Spec
    site: str
    dictionaries: tuple[Fitted, ...]  # the default k first
    corpus: dict[str, Any] | None  # the corpus stage's report (None: a dictionary file was given)
    source: str  # "fitted" or the dictionary file's path

    @property
    def layer(self) -> str:
        return self.site

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        maze = session.target_maze(self.spec, seed)
        saes = [d.sae for d in self.dictionaries]
        own, rows, measured = maze_faithfulness(
            session.policy, session.renderer, maze, self.site, saes, self.spec.batch_size
        )
        return (
            "done",
            [],
            {
                "seed": seed,
                "maze_dim": maze.maze_dim,
                "rows": rows,
                "p_cheese": own,
                "dictionaries": {str(d.k): m.to_json() for d, m in zip(self.dictionaries, measured, strict=True)},
                "sha256": {str(d.k): d.sha256 for d in self.dictionaries},
            },
        )


def _inputs_digest(session: Session, site: str, settings: FitSettings, files: Sequence[tuple[int, bytes]]) -> str:
    """Everything a fit reads, hashed: a saved fit is reused only when this matches."""
    h = hashlib.sha256()
    h.update(json.dumps([session.checkpoint.sha256, site, settings.to_json()], sort_keys=True).encode())
    for seed, data in files:
        h.update(f"{seed}:".encode())
        h.update(hashlib.sha256(data).digest())
    return h.hexdigest()


def _fit_or_reuse(path: Path, rows: torch.Tensor, meta: DictionaryMeta, site: str, sha: str) -> Fitted:
    if path.is_file():
        saved = read_dictionary(path, "fit")
        if saved.meta.get("inputs") == meta.inputs:
            check_dictionary(saved, path, site, sha, rows.shape[1], "fit")
            return Fitted(saved.k, saved.sae, saved.meta, saved.sha256)
    with one_thread():  # the same bits wherever and with however many cores the run has
        sae, _ = fit(rows, meta.settings)
    strings = meta.to_strings()
    data = dictionary_bytes(sae, strings)
    path.parent.mkdir(exist_ok=True)
    atomic_write_bytes(path, data)
    return Fitted(sae.k, sae, strings, hashlib.sha256(data).hexdigest())


def stages(plan: CorpusPlan, session: Session, run_stage: StageRunner) -> HeldOutPlan:
    """The corpus stage and the fit (or the given dictionary file, checked); the held-out cells' plan."""
    spec = plan.spec
    options: FeaturesOptions = spec.options
    if plan.given is not None:
        return HeldOutPlan(spec, plan.site, (plan.given,), None, str(options.dictionary))
    report = run_stage(CORPUS, spec, "corpus")
    folder = Path(report.pop(STAGE_FOLDER))
    files = [(c["seed"], (folder / c["file"]).read_bytes()) for c in report["chunks"]]
    rows = torch.from_numpy(np.concatenate([read_corpus_file(folder / c["file"]) for c in report["chunks"]]))
    fitted = []
    for k in all_ks(options):
        settings = FitSettings(
            k=k,
            expansion=options.expansion,
            epochs=options.epochs,
            seed=options.seed,
            batch_topk=options.sparsity == "batchtopk",
        )
        meta = DictionaryMeta(
            site=plan.site,
            checkpoint=session.checkpoint.name,
            checkpoint_sha256=session.checkpoint.sha256,
            corpus_seeds=tuple(options.corpus),
            rows=len(rows),
            settings=settings,
            inputs=_inputs_digest(session, plan.site, settings, files),
        )
        path = folder.parent / "fit" / f"dictionary-k{k}.safetensors"
        fitted.append(_fit_or_reuse(path, rows, meta, plan.site, session.checkpoint.sha256))
    corpus = {k: report[k] for k in ("rows", "positions")} | {"seeds": [c["seed"] for c in report["chunks"]]}
    return HeldOutPlan(spec, plan.site, tuple(fitted), corpus, "fitted")


def plan(spec: Spec, session: Session) -> CorpusPlan:
    """The corpus stage's plan, after the checks that need the network: the site, and a given dictionary file read
    and checked against this checkpoint and site (before the run folder opens, so a refusal writes nothing)."""
    site = site_of(spec, session)
    file = spec.options.dictionary
    if file is None:
        return CorpusPlan(spec, site)
    d = read_dictionary(file)
    check_dictionary(d, file, site, session.checkpoint.sha256, int(session.policy.activation_shape(site)[0]))
    return CorpusPlan(spec, site, Fitted(d.k, d.sae, d.meta, d.sha256))


def dictionary_filename(k: int, default_k: int) -> str:
    return "dictionary.safetensors" if k == default_k else f"dictionary-k{k}.safetensors"


def report(
    plan: HeldOutPlan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    done = list(done)
    default_k = plan.dictionaries[0].k
    quality = {
        str(d.k): dictionary_summary([m["dictionaries"][str(d.k)] for m in done], d.sae.d_sae)
        for d in plan.dictionaries
    }
    files: dict[str, bytes] = {}
    if plan.source == "fitted":
        files = {dictionary_filename(d.k, default_k): dictionary_bytes(d.sae, d.meta) for d in plan.dictionaries}
    figures = {}
    if len(quality) > 1 and done:
        figures["tradeoff.png"] = tradeoff_chart(quality, TARGETS, len(done))
    first = plan.dictionaries[0]
    return Report(
        {
            "site": plan.site,
            "dictionary": {
                "source": plan.source,
                "file": dictionary_filename(default_k, default_k) if plan.source == "fitted" else plan.source,
                "k": default_k,
                "features": first.sae.d_sae,
                "sha256": first.sha256,
                "channels": first.sae.d_in,
                "metadata": first.meta,
            },
            "corpus": plan.corpus,
            "held_out": {"seeds": [m["seed"] for m in done], "rows": sum(m["rows"] for m in done)},
            "targets": TARGETS,
            "default": quality[str(default_k)],
            "quality": quality,
        },
        figures,
        files,
    )


def summary(report: dict[str, Any]) -> list[str]:
    lines = []
    corpus = report["corpus"]
    if corpus is not None:
        lines.append(f"corpus: {len(corpus['seeds'])} mazes, {corpus['rows']} rows of {corpus['positions']} positions")
    lines.append(f"held out: {len(report['held_out']['seeds'])} mazes, {report['held_out']['rows']} positions")
    for k, q in report["quality"].items():
        d = q["abs_delta_p_cheese"]
        ci = d.get("mean_ci")
        lines.append(
            f"  k={k}: variance explained {fmt(q['variance_explained'], 3)}, mean L0 {fmt(q['mean_l0'], 2)}, "
            f"dead {q['dead']}/{q['features']}, dense {q['dense']}; mean |change in P(reach cheese)| "
            f"{fmt(d['mean'], 3)}"
            + (f" [{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]" if ci else "")
            + f", mean TV {fmt(q['mean_tv']['mean'], 3)}"
        )
    met = report["default"]["meets_targets"]
    short = [name for name, ok in met.items() if not ok]
    lines.append(
        f"default dictionary (k={report['dictionary']['k']}): "
        + ("meets every target" if not short else f"falls short on {', '.join(short)}")
    )
    return lines


MAZES = Table(
    "mazes",
    "one row per held-out maze and dictionary (its k): reconstruction and exact behaviour with the site replaced",
    (
        SEED,
        MAZE_COLUMNS[0],
        Column("k", "int", "features", "the dictionary's features active per position"),
        Column("positions", "int", "positions", "held-out positions (states x H x W, cheese kept and removed)"),
        Column("p_cheese", "float", "probability", "exact P(reach the cheese), the policy as it is"),
        Column("p_cheese_replaced", "float", "probability", "exact P(reach the cheese), the site reconstructed"),
        Column("delta_p_cheese", "float", "probability", "p_cheese_replaced - p_cheese"),
        Column("mean_tv", "float", "TV, 0 to 1", "mean over the chain's states of the total variation of the actions"),
        Column("variance_explained", "float", "fraction", "1 - SSE / the maze's own sum of squares about its mean"),
        Column("mean_l0", "float", "features", "mean features active per position"),
    ),
)


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.done:
        for k, r in m["dictionaries"].items():
            q = quality_of(r)
            yield {
                "seed": m["seed"],
                "maze_dim": m["maze_dim"],
                "k": int(k),
                "positions": q.rows,
                "p_cheese": m["p_cheese"],
                "p_cheese_replaced": r["p_cheese"],
                "delta_p_cheese": r["delta_p_cheese"],
                "mean_tv": r["mean_tv"],
                "variance_explained": q.variance_explained,
                "mean_l0": q.l0 / q.rows if q.rows else None,
            }


STUDY = Study(
    name="features",
    help="Fit a sparse dictionary of the activations at a conv site; judge it on held-out mazes, behaviour exactly.",
    options=FeaturesOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    stages=stages,
    stage_cells=corpus_seeds,
    tables=(StudyTable(MAZES, maze_rows),),
)


__all__ = ["STUDY"]
