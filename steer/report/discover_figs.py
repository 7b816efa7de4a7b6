"""`steer discover`'s figures: for the top rows of its ranked table, a field figure (the original and patched
policy, their difference and the pair's two mazes), an occupancy figure and an episode GIF, on one discovery
maze of the confirm stage (the field figure also as SVG or PDF where the spec's `figures:` asks, its vector twin
steer.report.field_vector). Its tables are `steer.report.discover_tables`; the name repeats along the layers
(docs/layout.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from PIL import Image

from steer.analysis.chain import behaviour
from steer.analysis.discover import (
    KNOWN_FAMILIES,
    Candidate,
    Measuring,
    facing_slice,
    family_pairs,
    level_for,
    pair_vectors,
)
from steer.analysis.discover_features import FeatureFamilies, is_feature
from steer.analysis.episodes import sample_episodes
from steer.maze.families import FAMILIES, Pair, regions
from steer.maze.layout import Maze
from steer.net.vfield import FacingField, facing_fields, facing_inputs
from steer.report.behaviour_figs import episode_gif_bytes, occupancy_figure
from steer.report.captions import diff_panel
from steer.report.field_vector import field_twin
from steer.report.figures import figure_bytes
from steer.report.render import LEGEND, FieldFigure, Panel, field_figure

FIGURES_FOR = 3  # the top rows of the ranked table get a field figure, an occupancy figure and a GIF


def shown_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The ranked rows drawn, the nulls left out: what a reader most needs to see first, the new X-vectors found,
    then the rest found, then the others (each group in rank order), the first `FIGURES_FOR`."""

    def first(r: Mapping[str, Any]) -> int:
        found = r["status"] == "found"
        feature = is_feature(r["family"])
        new = (
            r["role"] == "chosen"
            and r["family"] not in KNOWN_FAMILIES
            and (feature or not FAMILIES[r["family"]].relative)
        )
        return 0 if found and new else 1 if found else 2

    return sorted((r for r in rows if r["role"] != "null"), key=first)[:FIGURES_FOR]


def show_seed(done: Sequence[Mapping[str, Any]], discovery: set[int], key: str) -> int | None:
    """The maze a top row's figures show: the first confirm discovery maze (its seed in `discovery`) where the
    family has a member, of size 9 or more when there is one (a 3x3 maze shows little)."""
    have = [m for m in done if m["seed"] in discovery and "empty" not in m["claims"].get(key, {"empty": True})]
    big = [m for m in have if m["maze_dim"] >= 9]
    return int((big or have)[0]["seed"]) if have else None


def _edits_text(edits: tuple[Any, ...], maze: Maze) -> str:
    """A pair side's edits for a caption, e.g. `mouse [10, 8]`, `open [13, 2] +2`; the level when none."""
    if not edits:
        return f"the level (mouse {list(maze.mouse)})"
    op, square = edits[0]
    first = op if square is None else f"{op} {list(square)}"
    return first + (f" +{len(edits) - 1}" if len(edits) > 1 else "")


def _field_figure(
    title: str, row: Mapping[str, Any], pair: Pair | None, original: FacingField, patched: FacingField
) -> FieldFigure:
    """The original and patched policy in the maze's own facing, their difference, and the pair's two mazes (none
    for a dictionary feature, which has no pair)."""
    o, p = facing_slice(original), facing_slice(patched)
    panels = [
        Panel(o.maze, o.positions, o.arrows, "original"),
        Panel(p.maze, p.positions, p.arrows, f"patched\n{row['moves']} {row['direction']}"),
        diff_panel(o, p),
    ]
    if pair is not None:
        panels += [
            Panel(pair.a, (), torch.zeros(0, 2).numpy(), f"pair: a\n{_edits_text(pair.edits_a, pair.a)}"),
            Panel(pair.b, (), torch.zeros(0, 2).numpy(), f"pair: b\n{_edits_text(pair.edits_b, pair.b)}"),
        ]
    return field_figure(title, panels, footer=LEGEND)


def _row_files(
    m: Measuring,
    run_title: str,
    rank: int,
    row: Mapping[str, Any],
    seed: int,
    formats: Sequence[str],
    features: FeatureFamilies | None,
) -> tuple[dict[str, Image.Image], dict[str, bytes]]:
    """One top row's field and occupancy figures and its episode GIF (the original and patched episode from one
    episode seed), on maze `seed` with the row's own vector there (a feature's: at its positions there, times its
    typical code); the field figure's vector twin in each format of `formats` other than PNG."""
    cand = Candidate(row["family"], row["layer"], row["coeff"], row["target"])
    level = level_for(m.renderer, seed, cand.target)
    pair: Pair | None = None
    if is_feature(cand.family):
        assert features is not None
        v = features.vector(cand.family, level)[0]
    else:
        built = family_pairs(m.renderer, seed, cand.target, (cand.family,))[cand.family]
        assert isinstance(built, Pair)
        pair = built
        v = pair_vectors(m.policy, m.renderer, [pair], (cand.layer,))[0][cand.layer]
    patches = [(cand.layer, v, cand.coeff)]
    inputs = facing_inputs(m.renderer, level, m.device)
    regs = regions(level)
    original, patched = facing_fields(m.policy, inputs, [(), patches], m.batch_size)
    title = f"#{rank} {cand.key} · seed {seed} · {run_title}"
    tag = f"top{rank}"
    before, after = behaviour(original, regions=regs), behaviour(patched, regions=regs)
    labels = ("original", f"patched (x {cand.coeff:g})")
    field = _field_figure(title, row, pair, original, patched)
    figures = {
        f"field-{tag}.png": field.image(),
        f"occupancy-{tag}.png": occupancy_figure(level, before, after, title=title, labels=labels),
    }
    vectors = [f for f in formats if f != "png"]
    twin = field_twin(field) if vectors else None
    files = {f"field-{tag}.{fmt}": figure_bytes(twin, fmt) for fmt in vectors}
    episode_seed = seed * 1009 + rank
    first = sample_episodes(m.policy, level, 1, episode_seed, (), prefill=m.renderer).episodes[0]
    second = sample_episodes(m.policy, level, 1, episode_seed, patches, prefill=m.renderer).episodes[0]
    gif = episode_gif_bytes(level, [(labels[0], first), (labels[1], second)], title=title)
    return figures, {**files, f"episodes-{tag}.gif": gif}


def top_figures(
    m: Measuring,
    run_title: str,
    rows: Sequence[Mapping[str, Any]],
    done: Sequence[Mapping[str, Any]],
    discovery: set[int],
    formats: Sequence[str] = ("png",),
    features: FeatureFamilies | None = None,
) -> tuple[dict[str, Image.Image], dict[str, bytes]]:
    """The figures and GIFs of the shown rows (`shown_rows`), numbered by their place among them; a row whose
    family has no member on any confirm discovery maze gets none. `run_title` names the checkpoint and mode;
    `formats` are the spec's `figures:` (the field figures' vector twins)."""
    figures: dict[str, Image.Image] = {}
    files: dict[str, bytes] = {}
    for rank, row in enumerate(shown_rows(rows), start=1):
        seed = show_seed(done, discovery, row["candidate"])
        if seed is not None:
            drawn, written = _row_files(m, run_title, rank, row, seed, formats, features)
            figures |= drawn
            files |= written
    return figures, files


__all__ = ["FIGURES_FOR", "show_seed", "shown_rows", "top_figures"]
