"""Shared fixtures: the real default checkpoint and real procgen renderers, loaded once per test session."""

from __future__ import annotations

import pytest
import torch

from steer.maze.env import MazeRenderer
from steer.net import checkpoints

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def ckpt() -> checkpoints.Checkpoint:
    return checkpoints.load(checkpoints.DEFAULT_CHECKPOINT)


@pytest.fixture(scope="session")
def policy(ckpt):
    return ckpt.policy


@pytest.fixture(scope="session")
def easy() -> MazeRenderer:
    return MazeRenderer("easy")


@pytest.fixture(scope="session")
def hard() -> MazeRenderer:
    return MazeRenderer("hard")


@pytest.fixture(params=["easy", "hard"])
def renderer(request, easy, hard) -> MazeRenderer:
    return easy if request.param == "easy" else hard
