"""`steer explore`'s retarget mode: channels set at a clicked square on the maze the page shows, checked like a
`steer retarget` spec, and the exact P(reach the square) with and without the patch. A part of `Explorer`
(steer/explore/state.py), which supplies the session, the maze and the caches it names below."""

from __future__ import annotations

import threading
import time
from typing import Any

from steer.analysis.chain import Chain, build_chain, reach
from steer.analysis.retarget import rank_channels, ranking_scores
from steer.errors import SteerError, excerpt
from steer.explore.caches import LRU
from steer.maze.env import check_seed
from steer.maze.layout import Maze
from steer.net.checkpoints import Checkpoint
from steer.net.retarget import PixelPatch, activation_position, check_patch, pixel_fields, spatial_grid
from steer.net.vfield import FieldInputs, VectorField, facing_fields, facing_inputs
from steer.run.session import Session
from steer.run.specs import DEFAULT_LAYER, Spec
from steer.studies import STUDIES
from steer.studies.retarget import check_targets

RETARGET_PARAMETERS = ("seed", "distribution_mode", "layer", "target_edits", "channels", "value", "target")


class RetargetViews:
    """The retarget mode's requests; `Explorer` mixes it in and supplies what is declared here."""

    checkpoint: Checkpoint
    lock: threading.Lock
    _retarget: LRU[tuple[str, bytes, str], tuple[FieldInputs, Chain]]
    _cheese_channels: list[int]

    def session(self, mode: str) -> Session:
        raise NotImplementedError

    def _level(self, session: Session, seed: int) -> Maze:
        raise NotImplementedError

    @staticmethod
    def _edited(level: Maze, spec: Spec) -> Maze:
        raise NotImplementedError

    def retarget(self, data: Any) -> dict[str, Any]:
        """Retarget mode: `channels` set to `value` at the target square's activation position, on the maze the
        page shows (its edits applied; the cheese stays unless an edit removed it). Returns the patched field
        (facing 0, the page's arrows) and the exact P(reach the target within the timeout) and steps, with and
        without the patch (steer.analysis.chain.reach, both facings), checked like a `steer retarget` spec."""
        if not isinstance(data, dict):
            raise SteerError(f"request: expected a JSON object of parameters ({', '.join(RETARGET_PARAMETERS)}).")
        for key in data:
            if key not in RETARGET_PARAMETERS:
                raise SteerError(
                    f"{excerpt(key, 40)}: unknown parameter. Valid parameters: {', '.join(RETARGET_PARAMETERS)}."
                )
        seed = check_seed(data.get("seed"), "seed")
        target = data.get("target")
        raw: dict[str, Any] = {
            "seeds": [seed],
            "distribution_mode": data.get("distribution_mode") or self.checkpoint.mode,
            "layer": data.get("layer") or DEFAULT_LAYER,
            "channels": data.get("channels"),
            "value": data.get("value"),
            "targets": [target] if target is not None else None,
            "cheese": "keep",
        }
        if data.get("target_edits"):
            raw["target_edits"] = data["target_edits"]
        for key, hint in (("channels", "e.g. [10, 27]"), ("value", "e.g. 5.5"), ("targets", "click a square")):
            if raw[key] is None:
                raise SteerError(f"{'target' if key == 'targets' else key}: missing; {hint}.")
        try:
            return self._retarget_view(seed, raw)
        except SteerError as e:  # the spec's field is `targets[0]`; the request's is `target`
            raise SteerError(str(e).replace("targets[0]", "target")) from None

    def _retarget_view(self, seed: int, raw: dict[str, Any]) -> dict[str, Any]:
        spec = STUDIES["retarget"].parse(raw)  # a spec file's checks and messages
        start = time.perf_counter()
        with self.lock:
            session = self.session(raw["distribution_mode"])
            policy = session.policy
            layer = spec.effective_layer
            _, grid = spatial_grid(policy, layer)
            channels = spec.options.channels.channels
            if not channels:
                raise SteerError("channels: the explorer takes a list of channels, e.g. [10, 27].")
            check_patch(policy, layer, channels, spec.options.value)
            maze = self._edited(self._level(session, seed), spec)
            (square,) = spec.options.targets
            check_targets(maze, [square], seed)
            key = (session.mode, maze.to_bytes(), policy.resolve(layer))
            cached = self._retarget.get(key)
            if cached is None:
                inputs = facing_inputs(session.renderer, maze, session.device)
                (original,) = facing_fields(policy, inputs, [()], spec.batch_size)
                cached = self._retarget.put(key, (inputs, build_chain(original)))
            inputs, original_chain = cached
            patch = PixelPatch(layer, channels, activation_position(maze, square, grid), spec.options.value)
            (patched,) = pixel_fields(policy, inputs, [patch], spec.batch_size)
            with_patch = reach(build_chain(patched), [square])
            without = reach(original_chain, [square])
        steps = {
            k: (None if r.steps[0] != r.steps[0] else float(r.steps[0]))
            for k, r in (("intervention", with_patch), ("none", without))
        }
        field0 = VectorField(maze, patched.positions, patched.probs[0])
        return {
            "target": list(square),
            "position": list(patch.position),
            "channels": list(channels),
            "value": spec.options.value,
            "layer": layer,
            "positions": [list(p) for p in patched.positions],
            "patched": {"arrows": field0.arrows.tolist()},
            "p_reach": {"intervention": float(with_patch.p[0]), "none": float(without.p[0])},
            "steps": steps,
            "timing": {"compute_ms": round(1000 * (time.perf_counter() - start), 1)},
        }

    def cheese_channels(self, k: int = 2, seeds: int = 20) -> list[int]:
        """The retarget mode's default channels: the top `k` of `steer channels`' ranking at the default layer on
        easy seeds 0 .. seeds-1 (computed once; each maze is two forward passes)."""
        if not hasattr(self, "_cheese_channels"):
            session = self.session("easy")
            mazes = {seed: self._level(session, seed) for seed in range(seeds)}
            scores, _ = ranking_scores(session.policy, session.renderer, mazes, DEFAULT_LAYER, 0)
            self._cheese_channels = [int(r["channel"]) for r in rank_channels(scores)[:k]]  # type: ignore[call-overload]
        return self._cheese_channels
