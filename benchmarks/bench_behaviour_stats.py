"""`steer behaviour-stats` on 1,000 easy mazes with the default workers, to extrapolate to the posts' 10,000.

The cells (fields in both facings, the exact chain, the features) scale with the mazes; the regressions'
cost grows with them too (cross-validated fits on the mazes with a decision square, bootstrap refits), so both
are timed and extrapolated separately. Peak memory is the largest resident set of this process and of one
worker (`getrusage`), which must not grow with the mazes. Alone: `python benchmarks/bench_behaviour_stats.py`.
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from steer.run.runner import default_workers
from steer.studies import run_spec

OUT = Path("outputs/bench/behaviour-stats")


def behaviour_stats_figures(mazes: int = 1000) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    spec = OUT.parent / "behaviour-stats-spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "bench-behaviour-stats", "seeds": {"from": 0, "to": mazes - 1}}))
    start = time.perf_counter()
    report = run_spec("behaviour-stats", spec, OUT, force=True, workers=None)
    total = time.perf_counter() - start
    # The report (regressions, figures) again on the finished cells: the run's own share of it.
    start = time.perf_counter()
    run_spec("behaviour-stats", spec, OUT, workers=None)
    report_s = time.perf_counter() - start
    fit = report["by_condition"][0]["regressions"]
    return {
        "mazes": mazes,
        "workers": default_workers(),
        "seconds": total,
        "report_s": report_s,
        "cells_s": total - report_s,
        "extrapolated_10000_s": (total - report_s) * 10_000 / mazes + report_s * 10_000 / mazes,
        "with_decision_square": fit.get("with_decision_square"),
        "peak_rss_mb_parent": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_rss_mb_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (
            f"steer behaviour-stats, {r['mazes']} easy mazes, {r['workers']} workers",
            f"{r['seconds']:.1f} s",
            f"cells {r['cells_s']:.1f} s, regressions and figures {r['report_s']:.1f} s; "
            f"10,000 mazes: about {r['extrapolated_10000_s'] / 60:.1f} min (goal <= 15 min)",
        ),
        (
            "  peak memory (resident), parent / one worker",
            f"{r['peak_rss_mb_parent']:.0f} MB",
            f"worker {r['peak_rss_mb_worker']:.0f} MB",
        ),
    ]


if __name__ == "__main__":
    figures = behaviour_stats_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    for a, b, c in rows(figures):
        print(f"  {a:<60} {b:>9}  {c}")
