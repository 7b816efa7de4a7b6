"""Golden values: numbers any correct install reproduces within the reproducibility contract's tolerance.

A handful of mazes in both modes (every open square's action probabilities, original and with the maze's own
cheese vector subtracted), the exact chain's behaviour figures on them, and one claim's measured value and
verdict on a small study. `tests/test_golden.py` recomputes them and compares with `tests/golden/values.json`
at `TOLERANCE`; the file is written only by hand, never by the code under test in the run that checks it:

    make golden        # .venv/bin/python tests/golden.py --write

Regenerate it only for a change that is meant to move numbers, and say so in the commit. `--variants` measures
how far this machine's own kernels drift (one thread against two, oneDNN and ATen limited to AVX2 or to no
vector ISA), which is how the tolerance below was chosen (docs/reproducibility.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

GOLDEN = Path(__file__).resolve().parent / "golden" / "values.json"
LAYER = "block2.res1.resadd_out"
MAZES = {"easy": [0, 3, 8, 21, 28], "hard": [5, 100]}  # 3x3 to 15x15 in easy; a 25x25 maze in hard
CLAIM_SEEDS = list(range(20))
CLAIM_MEASURE = {"experiment": "golden", "metric": "p_cheese_ds", "kind": "change"}
CLAIM_CRITERION = {"statistic": "mean", "below": -0.3}

# Absolute, in probability (action probabilities, P(reach the cheese), P(top-right), a claim's mean change and
# interval), and relative for expected steps. Measured on a 2-core AMD EPYC (Zen 4) with `--variants`: one thread
# 3.2e-7, oneDNN limited to AVX2 3.2e-7, ATen and oneDNN on AVX2 3.6e-7, on no vector ISA at all 8.7e-6 (steps
# 5.7e-7 relative); the bound leaves about 6x room over the worst. A change to the code that moves a number by
# more than this is a real change, and fails.
TOLERANCE = {"probability": 5e-5, "steps_relative": 1e-5}


def compute() -> dict[str, Any]:
    """Every golden value, computed by the code at hand on the default checkpoint."""
    from steer.analysis.chain import maze_behaviours
    from steer.analysis.claim_measures import measure
    from steer.analysis.metrics import maze_metrics
    from steer.analysis.verdicts import verdict
    from steer.maze.env import MazeRenderer
    from steer.net import checkpoints
    from steer.net.vectors import PairSpec, compute_vector
    from steer.net.vfield import FieldInputs, vector_field
    from steer.studies import run_spec

    ck = checkpoints.load()
    values: dict[str, Any] = {"checkpoint": ck.sha256, "layer": LAYER, "mazes": {}}
    for mode, seeds in MAZES.items():
        renderer = MazeRenderer(mode)
        for seed in seeds:
            maze = renderer.level(seed)
            vec = compute_vector(ck.policy, renderer, maze, PairSpec("cheese"), LAYER)
            patch = [(LAYER, vec.tensor, -1.0)]
            inputs = FieldInputs.render(renderer, maze)
            original, patched = vector_field(ck.policy, inputs), vector_field(ck.policy, inputs, patch)
            metrics = maze_metrics(original, patched)
            behaviours = maze_behaviours(ck.policy, renderer, maze, [(), patch])
            values["mazes"][f"{mode}-{seed}"] = {
                # 8 decimals: far below the tolerance, and the file stays small enough to review
                "probs_original": np.round(original.probs.astype(np.float64), 8).tolist(),
                "probs_patched": np.round(patched.probs.astype(np.float64), 8).tolist(),
                "p_cheese_ds": metrics["p_cheese_ds"],
                "behaviour": [
                    {"p_cheese": b.p_cheese, "p_top_right": b.p_top_right, "mean_steps": b.mean_steps}
                    for b in behaviours
                ],
            }
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "golden.yaml"
        claim_spec = {"name": "golden", "seeds": CLAIM_SEEDS, "layer": LAYER, "vector": {"kind": "cheese"}, "coeff": -1}
        spec.write_text(yaml.safe_dump(claim_spec))
        report = run_spec("apply", spec, out=Path(tmp) / "run", workers=1)
    result = measure({"golden": report}, CLAIM_MEASURE)
    values["claim"] = {
        "measure": CLAIM_MEASURE,
        "criterion": CLAIM_CRITERION,
        "result": {k: result[k] for k in ("n", "mean", "median", "q25", "q75", "mean_ci", "median_ci", "wilcoxon_p")},
        "verdict": verdict(result, CLAIM_CRITERION),
    }
    return values


def _leaves(a: Any, b: Any, path: str) -> list[tuple[str, Any, Any]]:
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [(path, sorted(a), sorted(b))]
        return [x for k in a for x in _leaves(a[k], b[k], f"{path}.{k}" if path else k)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [(path, f"{len(a)} items", f"{len(b)} items")]
        return [x for i, (u, v) in enumerate(zip(a, b, strict=True)) for x in _leaves(u, v, f"{path}[{i}]")]
    return [(path, a, b)]


def differences(golden: dict[str, Any], now: dict[str, Any]) -> tuple[list[str], dict[str, float]]:
    """What differs beyond the tolerance (one line each), and the largest drift per kind of number."""
    problems: list[str] = []
    drift = {"probability": 0.0, "steps_relative": 0.0}
    for path, a, b in _leaves(golden, now, ""):
        if isinstance(a, bool | str) or a is None or b is None or isinstance(b, bool | str):
            if a != b:
                problems.append(f"{path}: golden {a!r}, now {b!r}")
            continue
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            problems.append(f"{path}: golden {a!r}, now {b!r}")
            continue
        if path.endswith("mean_steps"):
            kind, gap = "steps_relative", abs(a - b) / max(abs(a), 1e-12)
        elif path.endswith(".n"):
            kind, gap = "count", float(a != b)
        else:
            kind, gap = "probability", abs(a - b)
        if kind == "count":
            if gap:
                problems.append(f"{path}: golden {a}, now {b}")
            continue
        drift[kind] = max(drift[kind], gap)
        if gap > TOLERANCE[kind]:
            problems.append(f"{path}: golden {a!r}, now {b!r} (differs by {gap:.2e}; tolerance {TOLERANCE[kind]:g})")
    return problems, drift


# Environment variables that make torch choose other kernels on the same CPU, standing in for other CPUs.
VARIANTS: dict[str, dict[str, str]] = {
    "one thread": {"STEER_GOLDEN_THREADS": "1"},
    "two threads": {"STEER_GOLDEN_THREADS": "2"},
    "oneDNN AVX2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "STEER_GOLDEN_THREADS": "1"},
    "ATen AVX2 + oneDNN AVX2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "ATen default + oneDNN SSE4.1": {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"},
}


def variants() -> dict[str, dict[str, Any]]:
    """Each variant's largest drift from the committed golden values, each computed in a fresh process."""
    golden = json.loads(GOLDEN.read_text())
    drifts: dict[str, dict[str, Any]] = {}
    for name, env in VARIANTS.items():
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "values.json"
            cmd = [sys.executable, __file__, "--to", str(out)]
            subprocess.run(cmd, check=True, env={**os.environ, **env}, cwd=Path(__file__).resolve().parents[1])
            problems, drift = differences(golden, json.loads(out.read_text()))
        drifts[name] = {"env": env, "max_drift": drift, "beyond_tolerance": len(problems)}
    return drifts


def main(argv: list[str]) -> int:
    torch.set_num_threads(int(os.environ.get("STEER_GOLDEN_THREADS", torch.get_num_threads())))
    if argv == ["--write"]:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(json.dumps(compute(), indent=None, separators=(",", ":")) + "\n")
        print(f"wrote {GOLDEN}")
    elif len(argv) == 2 and argv[0] == "--to":
        Path(argv[1]).write_text(json.dumps(compute()))
    elif argv == ["--variants"]:
        print(json.dumps(variants(), indent=1))
    else:
        print("usage: python tests/golden.py --write | --variants | --to FILE", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    np.set_printoptions(precision=10)
    sys.exit(main(sys.argv[1:]))
