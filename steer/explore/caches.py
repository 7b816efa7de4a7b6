"""What `steer explore` keeps between requests: a small LRU cache, a maze state's observations and original field
(`MazeEntry`), and a maze's both facings and original exact behaviour (`EpisodeCache`), so that moving the
coefficient reruns only the network suffix."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import torch

from steer.analysis.chain import Behaviour, behaviour
from steer.analysis.metrics import FIELD_METRICS, behaviour_metrics, maze_info
from steer.maze.layout import Maze
from steer.net.vfield import FieldInputs, VectorField, facing_fields, facing_inputs
from steer.run.session import Session

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A small least-recently-used cache (observations of a 25×25 maze are ~15 MB, so keep only a few)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


@dataclass(frozen=True)
class MazeEntry:
    """What a maze state costs to compute once: its observations (with the memoised prefix), its original field
    and that field's metrics (paths are searched once per maze, not once per coefficient)."""

    inputs: FieldInputs
    original: VectorField
    info: dict[str, Any]  # steer.analysis.metrics.maze_info: maze_dim, cheese, decision_square
    original_values: dict[str, Any]  # each field metric of the original field

    @classmethod
    def compute(cls, inputs: FieldInputs, original: VectorField) -> MazeEntry:
        values = {name: m.of_field(original) for name, m in FIELD_METRICS.items() if m.of_field is not None}
        return cls(inputs, original, maze_info(original.maze), values)

    def metrics(self, patched: VectorField) -> dict[str, Any]:
        """`steer.analysis.metrics.maze_metrics(original, patched)`, reusing the original side."""
        out = dict(self.info)
        for name, m in FIELD_METRICS.items():
            if m.of_field is not None:
                out[name] = {"original": self.original_values[name], "patched": m.of_field(patched)}
            else:
                out[name] = m.compute(self.original, patched)
        return out


class EpisodeCache:
    """Both facings of one maze's squares (observations and memoised prefix) and the original policy's exact
    behaviour, computed once per maze; a coefficient change then reruns only the network suffix on them."""

    def __init__(self) -> None:
        self._by_maze: LRU[tuple[str, bytes], tuple[FieldInputs, Behaviour]] = LRU(2)  # both facings: 2x a field

    def statistics(self, session: Session, maze: Maze, layer: str, delta: torch.Tensor, batch_size: int) -> Any:
        """`steer.analysis.metrics.behaviour_metrics(original, patched)`: exact episode statistics
        (steer/analysis/chain.py)."""
        key = (session.mode, maze.to_bytes())
        cached = self._by_maze.get(key)
        if cached is None:
            inputs = facing_inputs(session.renderer, maze, session.device)
            (original,) = facing_fields(session.policy, inputs, [()], batch_size)
            cached = self._by_maze.put(key, (inputs, behaviour(original)))
        inputs, before = cached
        (patched,) = facing_fields(session.policy, inputs, [[(layer, delta, 1.0)]], batch_size)
        return behaviour_metrics(before, behaviour(patched))


__all__ = ["LRU", "EpisodeCache", "MazeEntry"]
