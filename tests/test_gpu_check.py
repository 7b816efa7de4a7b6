"""benchmarks/gpu_check.py: the GPU check that runs where a GPU is lent. Here: its comparison and refusal."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # as when run as a script: its sibling modules import by name
_spec = importlib.util.spec_from_file_location("gpu_check", BENCHMARKS / "gpu_check.py")
assert _spec is not None and _spec.loader is not None
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


def test_a_difference_beyond_float32_tolerance_is_a_mismatch_and_provenance_is_ignored() -> None:
    cpu = {"provenance": {"device": "cpu"}, "mazes": [{"p": 0.5, "name": "a"}], "n": 3}
    close = {"provenance": {"device": "cuda"}, "mazes": [{"p": 0.5 + 0.5 * gpu_check.ATOL, "name": "a"}], "n": 3}
    far = {"provenance": {"device": "cuda"}, "mazes": [{"p": 0.5 + 2 * gpu_check.ATOL, "name": "b"}], "n": 3}
    assert gpu_check.compare(cpu, close)["n_mismatches"] == 0
    result = gpu_check.compare(cpu, far)
    assert result["n_mismatches"] == 2  # the probability and the name
    assert result["max_abs_diff"] == pytest.approx(2 * gpu_check.ATOL)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the check would run, not refuse")
def test_without_a_gpu_the_check_says_so_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gpu_check.main(["--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "not available here" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_cuda_device_computes_in_full_float32_not_tf32() -> None:
    # cuDNN's default TF32 convolutions would move probabilities by ~1e-3 against the CPU; the flags are plain
    # settings, so this runs without a GPU.
    from steer.net.checkpoints import full_float32

    before = torch.backends.cudnn.allow_tf32, torch.get_float32_matmul_precision()
    try:
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
        full_float32("cpu")
        assert torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "high"
        full_float32("cuda:0")
        assert not torch.backends.cudnn.allow_tf32 and torch.get_float32_matmul_precision() == "highest"
    finally:
        torch.backends.cudnn.allow_tf32 = before[0]
        torch.set_float32_matmul_precision(before[1])
