"""`steer behaviour-stats` on 1,000 easy mazes with the default workers, to extrapolate to the posts' 10,000.

The cells (fields in both facings, the exact chain, the features) scale with the mazes; the regressions'
cost grows with them too (cross-validated fits on the mazes with a decision square, bootstrap refits), so both
are timed. The run's own process keeps each maze's result as compact text (about 1 KB) and its bootstraps in
batches of bounded size, so its peak memory (VmHWM, measured in a fresh process) should be nearly the same at
1,000 and at 10,000 mazes (docs/results.md gives both); a worker's does not grow at all. Alone:
`python benchmarks/bench_behaviour_stats.py [MAZES]`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from steer.run.runner import default_workers

OUT = Path("outputs/bench/behaviour-stats")


_RUN = """
import json, sys, time
from steer.run.allocator import keep_freed_memory
from steer.studies import run_spec
keep_freed_memory()  # as the CLI runs
start = time.perf_counter()
report = run_spec("behaviour-stats", sys.argv[1], sys.argv[2], force=True, workers=None)
total = time.perf_counter() - start
start = time.perf_counter()
run_spec("behaviour-stats", sys.argv[1], sys.argv[2], workers=None)  # every cell reused: the report alone
report_s = time.perf_counter() - start
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
fit = report["by_condition"][0]["regressions"]
print(json.dumps({"seconds": total, "report_s": report_s, "peak_kib": hwm,
                  "with_decision_square": fit.get("with_decision_square")}))
"""


def behaviour_stats_figures(mazes: int = 1000) -> dict[str, Any]:
    """The run in a fresh process, so that its peak memory is its own (this one has run every other benchmark)."""
    OUT.mkdir(parents=True, exist_ok=True)
    spec = OUT.parent / "behaviour-stats-spec.yaml"
    spec.write_text(yaml.safe_dump({"name": "bench-behaviour-stats", "seeds": {"from": 0, "to": mazes - 1}}))
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(spec), str(OUT)], capture_output=True, text=True, check=True, timeout=3600
    )
    r = json.loads(done.stdout.strip().splitlines()[-1])
    cells = r["seconds"] - r["report_s"]
    return {
        "mazes": mazes,
        "workers": default_workers(),
        "seconds": r["seconds"],
        "report_s": r["report_s"],
        "cells_s": cells,
        "extrapolated_10000_s": r["seconds"] * 10_000 / mazes,
        "with_decision_square": r["with_decision_square"],
        "peak_rss_mb_parent": r["peak_kib"] / 1024,
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
            "  peak memory (resident) of the run's process",
            f"{r['peak_rss_mb_parent']:.0f} MB",
            "its own high-water mark (VmHWM), measured in a fresh process",
        ),
    ]


if __name__ == "__main__":
    figures = behaviour_stats_figures(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    for a, b, c in rows(figures):
        print(f"  {a:<60} {b:>9}  {c}")
