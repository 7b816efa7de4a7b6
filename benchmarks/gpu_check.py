"""`--device cuda`, checked end to end: the same studies on the GPU and on the CPU, compared, and GPU speed.

    python benchmarks/gpu_check.py                 # on a machine with a CUDA build of torch and a GPU
    python benchmarks/gpu_check.py --device cpu    # the same script against itself (what the tests run)

Runs `apply` (easy and hard mazes), `sweep-coeff` and `behaviour` through `steer.run_spec` on the CPU and on
`--device`, compares every number in the two `metrics.json` files (float32 tolerance: the GPU's convolution
algorithms round differently), and times a 25x25 field and the 100-seed cheese-vector statistic on the
device. Writes outputs/gpu-check/gpu_check.json; exits 1 when a number differs beyond tolerance, 2 when the
device is not there.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from shared_machine import statistic_in_process
from timing import timed

from steer import run_spec
from steer.io import atomic_write_json
from steer.maze.env import MazeRenderer
from steer.net import checkpoints
from steer.net.vfield import FieldInputs, vector_field
from steer.run.session import Session

LAYER = "block2.res1.resadd_out"
# Probabilities in float32 agree to ~1e-6 between backends; exact-chain quantities amplify that a little.
ATOL = 1e-4
# Keys whose values legitimately differ between two runs: where and when they ran, and on what.
VOLATILE = {"provenance", "spec", "figures", "reused_cells"}


def specs(seeds: int) -> dict[str, tuple[str, dict[str, Any]]]:
    easy, hard = list(range(seeds)), list(range(100, 100 + seeds))
    cheese = {"kind": "cheese"}
    return {
        "apply-easy": ("apply", {"seeds": easy, "layer": LAYER, "vector": cheese, "coeff": -1}),
        "apply-hard": (
            "apply",
            {"seeds": hard, "layer": LAYER, "vector": cheese, "coeff": -1, "distribution_mode": "hard"},
        ),
        "sweep-coeff": ("sweep-coeff", {"seeds": easy, "layer": LAYER, "vector": cheese, "coeffs": [-2, -1, 1]}),
        "behaviour": ("behaviour", {"seeds": easy, "layer": LAYER, "vector": cheese, "coeff": -1}),
    }


def leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            if not (path == "" and k in VOLATILE):
                yield from leaves(v, f"{path}.{k}" if path else k)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Every leaf of two reports: numbers within ATOL, everything else equal."""
    left, right = dict(leaves(a)), dict(leaves(b))
    worst, bad = 0.0, []
    for key in sorted(set(left) | set(right)):
        x, y = left.get(key), right.get(key)
        if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
            diff = abs(float(x) - float(y))
            worst = max(worst, diff)
            if diff > ATOL:
                bad.append(f"{key}: {x!r} vs {y!r}")
        elif x != y:
            bad.append(f"{key}: {str(x)[:60]} vs {str(y)[:60]}")
    return {"leaves": len(left), "max_abs_diff": worst, "mismatches": bad[:20], "n_mismatches": len(bad)}


def speed(device: str) -> dict[str, float]:
    ck = checkpoints.load(device=device)
    hard = MazeRenderer("hard")
    maze = hard.level(100)  # a full 25x25 maze, 337 squares
    field_s = timed(lambda: vector_field(ck.policy, FieldInputs.render(hard, maze, device)), 5)
    session = Session(ck, "easy", "checkpoint", MazeRenderer("easy"), device)
    statistic_s = timed(lambda: statistic_in_process(session, range(100)), 2)
    return {"field_25x25_original_s": field_s, "cheese_statistic_100_seeds_s": statistic_s}


def main(argv: list[str] | None = None) -> int:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--device", default="cuda")
    args.add_argument("--seeds", type=int, default=5, help="mazes per study (default 5)")
    args.add_argument("--out", type=Path, default=Path("outputs/gpu-check"))
    args.add_argument("--no-speed", action="store_true", help="skip the timings")
    a = args.parse_args(argv)
    if a.device != "cpu" and not (a.device.startswith("cuda") and torch.cuda.is_available()):
        print(
            f"gpu_check: device {a.device!r} is not available here (torch {torch.__version__}, "
            f"torch.cuda.is_available() is {torch.cuda.is_available()}). Run it on a machine with a GPU and a "
            "CUDA build of torch.",
            file=sys.stderr,
        )
        return 2
    result: dict[str, Any] = {
        "device": a.device,
        "device_name": torch.cuda.get_device_name(0) if a.device.startswith("cuda") else "cpu",
        "torch": torch.__version__,
        "atol": ATOL,
        "studies": {},
    }
    for name, (command, spec) in specs(a.seeds).items():
        reports = {}
        for device in ("cpu", a.device):
            path = a.out / device / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"name": name, **spec}))  # JSON is YAML
            reports[device] = run_spec(command, path, a.out / device / name, device=device, force=True)
        result["studies"][name] = compare(reports["cpu"], reports[a.device])
    if not a.no_speed:
        result["speed"] = {a.device: speed(a.device)}
    atomic_write_json(a.out / "gpu_check.json", result)
    failed = [n for n, c in result["studies"].items() if c["n_mismatches"]]
    for name, c in result["studies"].items():
        print(f"{name:12s} {c['leaves']:6d} numbers, max |cpu - {a.device}| {c['max_abs_diff']:.2e}", end="")
        print(f"  {c['n_mismatches']} beyond {ATOL:g}" if c["n_mismatches"] else "  ok")
    for device, s in result.get("speed", {}).items():
        field, stat = s["field_25x25_original_s"], s["cheese_statistic_100_seeds_s"]
        print(f"{device}: 25x25 field {field:.3f} s; cheese-vector statistic, seeds 0-99, {stat:.2f} s")
    print(f"wrote {a.out / 'gpu_check.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
