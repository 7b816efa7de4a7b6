"""A dictionary's quality over held-out mazes, from the per-maze records of `steer.analysis.features`.

Variance explained is pooled over every held-out position (1 − ΣSSE / Σ the total sum of squares about the pooled
mean), and given per maze with a bootstrap interval over mazes; the behavioural numbers (the change in exact
P(reach the cheese), its absolute value, the mean total variation) are per maze with intervals
(`steer.analysis.metrics.describe`). The issue's targets are checked plainly: at least 90% of the variance
explained and mean |change in P(reach the cheese)| at most 0.05 at a mean L0 of 8 or fewer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from steer.analysis.features import DENSE, Quality
from steer.analysis.metrics import describe

TARGETS = {"variance_explained": 0.9, "mean_abs_delta_p_cheese": 0.05, "mean_l0": 8.0}


def quality_of(record: Mapping[str, Any]) -> Quality:
    q = record["quality"]
    return Quality(q["rows"], q["sse"], q["sum_x"], q["sum_x2"], q["l0"], q["fired"])


def pooled_variance_explained(qualities: Sequence[Quality]) -> float | None:
    n = sum(q.rows for q in qualities)
    if not n:
        return None
    sx = np.sum([q.sum_x for q in qualities], axis=0)
    sx2 = np.sum([q.sum_x2 for q in qualities], axis=0)
    sst = float((sx2 - sx**2 / n).sum())
    return 1.0 - sum(q.sse for q in qualities) / sst if sst > 0 else None


def dictionary_summary(records: Sequence[Mapping[str, Any]], d_sae: int) -> dict[str, Any]:
    """One dictionary over the held-out mazes (`records`: its per-maze faithfulness records)."""
    qualities = [quality_of(r) for r in records]
    rows = sum(q.rows for q in qualities)
    fired = np.sum([q.fired for q in qualities], axis=0) if qualities else np.zeros(d_sae)
    frequency = fired / rows if rows else fired * 0.0
    ve = pooled_variance_explained(qualities)
    mean_l0 = sum(q.l0 for q in qualities) / rows if rows else None
    delta = [float(r["delta_p_cheese"]) for r in records]
    abs_delta = describe([abs(d) for d in delta])
    out = {
        "mazes": len(records),
        "rows": rows,
        "variance_explained": ve,
        "variance_explained_per_maze": describe([q.variance_explained for q in qualities]),
        "mean_l0": mean_l0,
        "features": int(d_sae),
        "dead": int((fired == 0).sum()),
        "dense": int((frequency > DENSE).sum()),
        "dense_threshold": DENSE,
        "delta_p_cheese": describe(delta),
        "abs_delta_p_cheese": abs_delta,
        "mean_tv": describe([float(r["mean_tv"]) for r in records]),
    }
    out["meets_targets"] = {
        "variance_explained": ve is not None and ve >= TARGETS["variance_explained"],
        "mean_abs_delta_p_cheese": abs_delta["mean"] is not None
        and abs_delta["mean"] <= TARGETS["mean_abs_delta_p_cheese"],
        "mean_l0": mean_l0 is not None and mean_l0 <= TARGETS["mean_l0"],
    }
    return out
