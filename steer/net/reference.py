"""An independent re-implementation of the published research pipeline (procgen-tools), kept as an oracle.

It follows procgen-tools step by step rather than steer's fast path: one procgen environment per mouse
position in a vectorised env, the mouse placed by rewriting the player's float32 position, legal squares
found on the inner grid (walls stripped ring by ring) in row-major order with the cheese square left out,
observations scaled as `obs / 255.0` in float64 then cast to float32, a conventional `nn.Module` Impala
network patched with a torch forward hook on the residual-add module (`output + coeff * vector`, applied
once), and probabilities from `Categorical(logits=log_softmax(logits))`.

Tests compare steer's fields with this to float32 precision, and the benchmark uses it as the naive
baseline (`batch_size=1`: batch-1 forward passes, as notebooks do).
"""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from steer.maze.env import _procgen_env
from steer.maze.layout import CHEESE, EMPTY, WALL
from steer.maze.state import MazeState


class _ResidualAdd(nn.Module):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


class _Res(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.resadd = _ResidualAdd()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resadd(self.conv2(torch.relu(self.conv1(torch.relu(x)))), x)


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res1 = _Res(cout)
        self.res2 = _Res(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res2(self.res1(self.maxpool(self.conv(x))))


class _Embedder(nn.Module):
    def __init__(self, s: int) -> None:
        super().__init__()
        self.block1, self.block2, self.block3 = _Block(3, 16 * s), _Block(16 * s, 32 * s), _Block(32 * s, 32 * s)
        self.fc = nn.Linear(32 * s * 64, 256)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.block3(self.block2(self.block1(x))))
        return torch.relu(self.fc(torch.flatten(x, 1)))


class ReferencePolicy(nn.Module):
    def __init__(self, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        s = state_dict["embedder.block1.conv.weight"].shape[0] // 16
        self.embedder = _Embedder(s)
        self.fc_policy = nn.Linear(256, 15)
        self.fc_value = nn.Linear(256, 1)
        self.load_state_dict(state_dict)
        self.eval()

    def forward(self, x: torch.Tensor) -> Categorical:
        logits = self.fc_policy(self.embedder(x))
        return Categorical(logits=torch.log_softmax(logits, dim=1))


def _inner_grid(grid: np.ndarray) -> tuple[np.ndarray, int]:
    g, pad = grid, 0
    while (
        g.shape[0] > 2
        and (g[0] == WALL).all()
        and (g[-1] == WALL).all()
        and (g[:, 0] == WALL).all()
        and (g[:, -1] == WALL).all()
    ):
        g, pad = g[1:-1, 1:-1], pad + 1
    return g, pad


def _with_mouse(state: MazeState, row: int, col: int) -> bytes:
    ents = list(state.entities)
    i = state.player_index()
    ents[i] = {**ents[i], "x": struct.pack("<f", np.float32(col + 0.5)), "y": struct.pack("<f", np.float32(row + 0.5))}
    return replace(state, entities=tuple(ents)).to_bytes()


def reference_field(
    policy: ReferencePolicy,
    state_bytes: bytes,
    mode: str,
    patch: tuple[str, torch.Tensor, float] | None = None,
    batch_size: int | None = None,
) -> tuple[list[tuple[int, int]], np.ndarray]:
    """World positions and (N, 15) probabilities, computed the procgen-tools way.

    `patch` is (module name such as 'embedder.block2.res1.resadd', vector, coeff).
    """
    state = MazeState.parse(state_bytes)
    grid = np.asarray(state.grid).reshape(state.grid_h, state.grid_w)
    inner, pad = _inner_grid(grid)
    legal = [(r, c) for r in range(inner.shape[0]) for c in range(inner.shape[1]) if inner[r, c] == EMPTY]
    assert CHEESE not in {inner[r, c] for r, c in legal}
    all_env = _procgen_env(1, mode, num=len(legal))
    all_env.callmethod("set_state", [_with_mouse(state, r + pad, c + pad) for r, c in legal])
    _, obs, _ = all_env.observe()
    batch = (obs["rgb"].transpose(0, 3, 1, 2) / 255.0).astype(np.float32)
    all_env.close()

    handle = None
    if patch is not None:
        name, vector, coeff = patch
        delta = torch.from_numpy(coeff * vector.numpy())
        module = dict(policy.named_modules())[name]
        handle = module.register_forward_hook(lambda _m, _i, out: out + delta)
    try:
        with torch.no_grad():
            size = batch_size or len(batch)
            probs = torch.cat([policy(torch.tensor(batch[i : i + size])).probs for i in range(0, len(batch), size)])
    finally:
        if handle is not None:
            handle.remove()
    return [(r + pad, c + pad) for r, c in legal], probs.numpy()
