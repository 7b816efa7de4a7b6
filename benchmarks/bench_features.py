"""The cost of `steer features`' default dictionary: its corpus and its fit, with the corpus size and memory.

`make bench` runs this beside its other figures; alone: `python benchmarks/bench_features.py` (BENCH_FEATURES_MAZES
sets a smaller corpus for a quick look; the default is the study's, 100 mazes). Timed once each (a fit of minutes
has no warm-up to take out), as the study runs them:

- the corpus: each corpus maze's states (both facings, cheese kept and removed) through the network to the site,
  a `fraction` of their positions drawn (one process here; the study spreads the mazes over its workers);
- the fit: the default TopK dictionary on those rows, on one torch thread (as the study fits, so its bytes do not
  depend on the cores), the issue's budget 10 minutes on 2 cores.

The machine's load average is recorded at the start and end: the figures of a shared machine are upper bounds.
"""

from __future__ import annotations

import os
import resource
import time
from typing import Any

import numpy as np
import torch

from steer.analysis.features import corpus_rows
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.net.sae import FitSettings, fit
from steer.run.cores import machine, one_thread
from steer.run.specs import DEFAULT_LAYER
from steer.studies.features_spec import DEFAULT_CORPUS, FeaturesOptions


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def features_figures(ck: checkpoints.Checkpoint, mazes: int | None = None) -> dict[str, Any]:
    options = FeaturesOptions()
    seeds = DEFAULT_CORPUS[: mazes or len(DEFAULT_CORPUS)]
    renderer = MazeRenderer("easy")
    load_start = os.getloadavg()[0]
    start = time.perf_counter()
    parts, positions = [], 0
    for seed in seeds:
        draw = int(np.random.SeedSequence([options.seed, seed]).generate_state(1)[0])
        x, total = corpus_rows(ck.policy, renderer, renderer.level(seed), DEFAULT_LAYER, options.fraction, draw, 64)
        parts.append(x)
        positions += total
    corpus_s = time.perf_counter() - start
    rows = torch.from_numpy(np.concatenate(parts))
    settings = FitSettings(
        k=options.k,
        expansion=options.expansion,
        epochs=options.epochs,
        seed=options.seed,
        batch_topk=options.sparsity == "batchtopk",
    )
    start = time.perf_counter()
    with one_thread():
        _, log = fit(rows, settings)
    fit_s = time.perf_counter() - start
    return {
        "site": DEFAULT_LAYER,
        "corpus_mazes": len(seeds),
        "corpus_positions": positions,
        "corpus_rows": int(rows.shape[0]),
        "corpus_mb": rows.numel() * 4 / 1e6,
        "settings": settings.to_json(),
        "steps": log.steps,
        "train_fvu_last_epoch": log.final_fvu,
        "corpus_s": corpus_s,
        "fit_s": fit_s,
        "peak_rss_gb": _peak_gb(),
        "load_average": [load_start, os.getloadavg()[0]],
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    s = r["settings"]
    return [
        (
            f"features: default dictionary fit (k={s['k']}, {s['expansion']}x, {s['epochs']} epochs, 1 thread)",
            f"{r['fit_s']:.1f} s",
            f"{r['corpus_rows']:,} rows x 32 channels ({r['corpus_mb']:.0f} MB), {r['steps']} steps; goal <= 600 s",
        ),
        (
            f"  its corpus, {r['corpus_mazes']} mazes, one process",
            f"{r['corpus_s']:.1f} s",
            f"{r['corpus_positions']:,} positions seen; peak memory {r['peak_rss_gb']:.2f} GB; load "
            f"{r['load_average'][0]:.1f} -> {r['load_average'][1]:.1f}",
        ),
    ]


if __name__ == "__main__":
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))
    quick = os.environ.get("BENCH_FEATURES_MAZES")
    result = features_figures(checkpoints.load(), int(quick) if quick else None)
    m = machine()
    print(f"on {m['cpu']}, {torch.get_num_threads()} torch threads: {result}")
    for a, b, c in rows(result):
        print(f"  {a}  {b:>9}  {c}")
