"""`steer feature-map`: read a dictionary's features: what each feature's spatial map tracks, beside the site's
channels scored the same way, per maze against a shuffled control from the maze's own squares.

A study of its own rather than a `read:` step of `steer features`: reading needs a finished dictionary and its
own mazes (a discovery and a replication sample, drawn by a batch), while `features` fits one from a corpus and
judges its faithfulness; a file written by one `features` run is read here by as many runs as there are samples.

    seeds: {from: 1000, to: 1049}                      # the mazes read (outside the dictionary's corpus)
    dictionary: runs/fit/dictionary.safetensors        # required: a `steer features` dictionary file
    site: block2.res1.resadd_out                       # optional; must be the dictionary's site
    shuffle_seed: 0                                    # optional: seeds each maze's control targets
    draws: 16                                          # optional: control targets drawn per maze (averaged)
    cards: 8                                           # optional: cards: each property's top feature, then the best
    card_mazes: 4                                      # optional: mazes per card (where the feature fires most)

Per maze (`steer.analysis.feature_maps`): every feature's and channel's score, control and gain for each property
(cheese, mouse, top-right, walls, decision square). metrics.json: `mazes[i].by_feature[f]` and `by_channel[c]`
(each property's gain per maze, with its score and control), `mazes[i].top` (the run's top feature's and top
channel's gains per property), `leaders` (each property's top feature and channel) and `ranking` (every unit
and property over mazes: score, control, the gain with n and its 95% interval, the rank:
`steer.analysis.feature_ranking`; also ranking.csv), `cards` (the top features drawn). features.md: the ranking
as markdown; card-feature<i>.png: one card per top feature.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from steer.analysis.feature_maps import ABOUT, PROPERTIES, feature_codes, maze_maps, site_maps
from steer.analysis.feature_ranking import (
    KINDS,
    UnitRow,
    per_maze_top,
    ranked,
    top_features,
    unit_records,
    unit_rows,
)
from steer.analysis.metrics import fmt
from steer.analysis.stats import settings
from steer.errors import SteerError
from steer.maze.layout import Square
from steer.net.dictionary_files import check_dictionary, read_dictionary
from steer.net.retarget import activation_position, spatial_grid
from steer.net.sae import TopKSAE
from steer.report.feature_cards import CardMaze, card_figure
from steer.report.tables import MAZE_COLUMNS, SEED, Column, Table, maze_keys
from steer.run.options import Options, option, whole
from steer.run.session import Session
from steer.run.spec_fields import seed_value
from steer.run.specs import DEFAULT_LAYER, Spec
from steer.run.study import CellResult, Finished, Report, Study, StudyTable
from steer.studies.features_spec import parse_conv_site, parse_dictionary_path

LISTED = 10  # features per property listed in features.md


@dataclass(frozen=True, kw_only=True)
class FeatureMapOptions(Options):
    dictionary: Path = option(
        parse_dictionary_path,
        beside=True,
        missing="dictionary: missing; give the dictionary file to read, e.g. dictionary: "
        "outputs/features-fit/dictionary.safetensors (written by `steer features`).",
        about="the dictionary file whose features are read",
    )
    site: str = option(parse_conv_site, default=DEFAULT_LAYER, about="the site (the dictionary's)")
    shuffle_seed: int = option(seed_value, default=0, about="seeds each maze's control targets")
    draws: int = option(whole(1, 256), default=16, about="control targets drawn per maze and property")
    cards: int = option(whole(0, 64), default=8, about="feature cards drawn (each property's top feature first)")
    card_mazes: int = option(whole(1, 16), default=4, about="mazes per card")


@dataclass(frozen=True)
class Plan:
    spec: Spec
    layer: str
    grid: int
    sae: TopKSAE

    def cell(self, session: Session, seed: int, out: Path) -> CellResult:
        options: FeatureMapOptions = self.spec.options
        maze = session.target_maze(self.spec, seed)
        if maze.cheese is None:
            return "skipped", [], {"seed": seed, "reason": "no cheese (the target_edits removed it)"}
        m = maze_maps(
            session.policy,
            session.renderer,
            maze,
            self.layer,
            self.sae,
            self.grid,
            options.shuffle_seed,
            seed,
            options.draws,
            self.spec.batch_size,
        )
        ds = maze.decision_square()
        return (
            "done",
            [],
            {
                "seed": seed,
                "maze_dim": maze.maze_dim,
                "cheese": list(maze.cheese),
                "decision_square": list(ds) if ds else None,
                "missing": m.missing,
                "by_feature": unit_records(m.features, m.peak),
                "by_channel": unit_records(m.channels),
            },
        )


def plan(spec: Spec, session: Session) -> Plan:
    """The site (a square spatial map) and the dictionary, read and checked against this checkpoint and site
    before the run folder opens, so a refusal writes nothing."""
    options: FeatureMapOptions = spec.options
    policy = session.policy
    try:
        site = policy.hook_names[policy.site_index(options.site)]
    except SteerError:
        raise SteerError(
            f"site: {options.site!r} is not a hook point of this policy; use the dictionary's site, e.g. "
            "block2.res1.resadd_out."
        ) from None
    channels, grid = spatial_grid(policy, site, "site")
    d = read_dictionary(options.dictionary)
    check_dictionary(d, options.dictionary, site, session.checkpoint.sha256, channels)
    return Plan(spec, site, grid, d.sae)


def check(spec: Spec) -> None:
    if spec.layer is not None:
        raise SteerError("layer: `steer feature-map` reads the site named under `site:`; use site: <hook name>.")


def _leaders(rows: Sequence[UnitRow]) -> dict[str, dict[str, int]]:
    out = {}
    for prop in PROPERTIES:
        best = {kind: ranked(rows, kind, prop) for kind in KINDS}
        if all(best.values()):
            out[prop] = {kind: best[kind][0].unit for kind in KINDS}
    return out


def _card_mazes(
    session: Session,
    plan: Plan,
    done: Sequence[dict[str, Any]],
    feature: int,
    tracks: str,
    cache: dict[int, tuple[list[Square], np.ndarray]],
) -> list[CardMaze]:
    """The `card_mazes` mazes where the feature's mean map peaks highest, its map recomputed there: the mean over
    the mouse's states, or for a feature that tracks the mouse, its map at the state where it is largest (a mean
    over the mouse's squares would only draw the maze's corridors), the mouse drawn there."""
    options: FeatureMapOptions = plan.spec.options
    order = sorted(done, key=lambda m: (-(m["by_feature"][feature]["peak"]), m["seed"]))
    out = []
    for m in order[: options.card_mazes]:
        if m["by_feature"][feature]["peak"] <= 0:
            break  # the feature does not fire on the rest either
        maze = session.target_maze(plan.spec, m["seed"])
        if m["seed"] not in cache:  # the top features fire most on the same mazes: each maze's network pass once
            cache[m["seed"]] = site_maps(session.policy, session.renderer, maze, plan.layer, plan.spec.batch_size)
        mice, acts = cache[m["seed"]]
        codes = feature_codes(plan.sae, acts)[:, feature]
        mouse = None
        if tracks == "mouse":
            state = int(codes.reshape(len(codes), -1).max(1).argmax())
            mouse, shown = mice[state], codes[state]
            frame = session.renderer.observe_maze(maze.with_mouse(mouse).with_facing(state * 2 // len(mice)))
        else:
            shown, frame = codes.mean(0), session.renderer.observe_maze(maze)
        ds = maze.decision_square()
        out.append(
            CardMaze(
                m["seed"],
                frame,
                shown,
                activation_position(maze, maze.cheese, plan.grid) if maze.cheese else None,
                activation_position(maze, ds, plan.grid) if ds else None,
                activation_position(maze, mouse, plan.grid) if mouse else None,
            )
        )
    return out


def ranking(rows: Sequence[UnitRow]) -> list[dict[str, Any]]:
    """The RANKING table's rows: per property and kind, the ranked units first (best first), then the rest."""
    out = []
    for prop in PROPERTIES:
        for kind in KINDS:
            order = ranked(rows, kind, prop)
            ranked_units = {r.unit for r in order}
            rest = [r for r in rows if r.kind == kind and r.prop == prop and r.unit not in ranked_units]
            for i, r in enumerate([*order, *rest], 1):
                ci = r.gain.get("mean_ci") or (None, None)
                out.append(
                    {
                        "kind": kind,
                        "unit": r.unit,
                        "property": prop,
                        "rank": i if i <= len(order) else None,
                        "n": r.gain["n"],
                        "score": r.score["mean"],
                        "control": r.control["mean"],
                        "gain": r.gain["mean"],
                        "gain_ci_low": ci[0],
                        "gain_ci_high": ci[1],
                    }
                )
    return out


def markdown(rows: Sequence[UnitRow], leaders: dict[str, dict[str, int]], n: int) -> str:
    """features.md: per property, the top features and the best channels, each with its gain's interval and n."""
    lines = [
        "# Features ranked by what their maps track",
        "",
        f"Over {n} mazes. Gain: Pearson's r of the unit's map with the property's target map minus the same with a "
        "target drawn from the maze's own squares (the control); mean over mazes with its 95% bootstrap interval. "
        "Ranked by the interval's lower end.",
    ]
    for prop in PROPERTIES:
        lines += ["", f"## {prop.replace('_', '-')}", "", ABOUT[prop], ""]
        lines += ["| rank | unit | gain (95% CI) | score | control | n |", "|---|---|---|---|---|---|"]
        for kind, count in (("feature", LISTED), ("channel", 3)):
            for i, r in enumerate(ranked(rows, kind, prop)[:count], 1):
                ci = r.gain["mean_ci"]
                lines.append(
                    f"| {i} | {kind} {r.unit} | {fmt(r.gain['mean'], 3)} ({fmt(ci[0], 3)}, {fmt(ci[1], 3)}) | "
                    f"{fmt(r.score['mean'], 3)} | {fmt(r.control['mean'], 3)} | {r.gain['n']} |"
                )
    return "\n".join(lines) + "\n"


def report(
    plan: Plan, session: Session, spec: Spec, done: Sequence[dict[str, Any]], skipped: list[dict[str, Any]]
) -> Report:
    options: FeatureMapOptions = spec.options
    done = list(done)  # the runner's records are decoded on each pass; the ranking passes over them per unit
    rows = unit_rows(done)
    leaders = _leaders(rows)
    mazes = [{**m, "top": per_maze_top(m, leaders)} for m in done]
    by_key = {(r.kind, r.unit, r.prop): r for r in rows}
    figures: dict[str, Image.Image] = {}
    cards = []
    cache: dict[int, tuple[list[Square], np.ndarray]] = {}
    for feature, best in top_features(rows, options.cards):
        shown = _card_mazes(session, plan, done, feature, best.prop, cache)
        props = {p: by_key[("feature", feature, p)].to_json() for p in PROPERTIES}
        name = f"card-feature{feature}.png"
        figures[name] = card_figure(feature, best.prop, props, shown)
        cards.append({"feature": feature, "tracks": best.prop, "gain": best.gain, "mazes": [m.seed for m in shown]})
    return Report(
        {
            "site": plan.layer,
            "dictionary": {
                "file": str(options.dictionary),
                "features": plan.sae.d_sae,
                "k": plan.sae.k,
                "channels": plan.sae.d_in,
            },
            "mazes": mazes,
            "leaders": leaders,
            "ranking": ranking(rows),
            "cards": cards,
            "notes": {**ABOUT, "gain": "score - control per maze; ranked by the lower end of its mean's interval"},
            "statistics": settings(),
        },
        figures,
        {"features.md": markdown(rows, leaders, len(done)).encode()},
    )


def summary(report: dict[str, Any]) -> list[str]:
    lines = [f"features of {report['dictionary']['file']} at {report['site']}, {len(report['mazes'])} mazes:"]
    for prop in PROPERTIES:
        parts = []
        for kind in KINDS:
            r = next((r for r in report["ranking"] if r["property"] == prop and r["kind"] == kind and r["rank"]), None)
            if r is not None:
                parts.append(
                    f"{kind} {r['unit']} gain {fmt(r['gain'], 3)} [{fmt(r['gain_ci_low'], 3)}, "
                    f"{fmt(r['gain_ci_high'], 3)}] n {r['n']}"
                )
        lines.append(f"  {prop}: best " + ("; best ".join(parts) if parts else "none measured on enough mazes"))
    return lines


UNIT = Column("unit", "int", "", "the feature's or channel's index")
RANKING = Table(
    "ranking",
    "one row per unit (feature or channel) and property: its score, control and gain over mazes",
    (
        Column("kind", "str", "", "feature (of the dictionary) or channel (of the site)"),
        UNIT,
        Column("property", "str", "", "cheese, mouse, top_right, walls or decision"),
        Column("rank", "int", "", "its rank among units of its kind for the property (empty: not ranked)"),
        Column("n", "int", "mazes", "mazes where the gain is defined"),
        Column("score", "float", "Pearson r", "mean over mazes of r(map, the property's target map)"),
        Column("control", "float", "Pearson r", "mean over mazes of r(map, a target drawn from the maze's squares)"),
        Column("gain", "float", "Pearson r", "mean over mazes of score - control"),
        Column("gain_ci_low", "float", "Pearson r", "the mean gain's 95% bootstrap interval, low end"),
        Column("gain_ci_high", "float", "Pearson r", "the mean gain's 95% bootstrap interval, high end"),
    ),
)
MAZES = Table(
    "mazes",
    "one row per maze and property: the gains of the run's top feature and top channel for that property",
    (
        SEED,
        *MAZE_COLUMNS,
        Column("property", "str", "", "cheese, mouse, top_right, walls or decision"),
        Column("feature", "int", "", "the property's top feature over the run's mazes"),
        Column("feature_gain", "float", "Pearson r", "its gain on this maze"),
        Column("channel", "int", "", "the property's top channel over the run's mazes"),
        Column("channel_gain", "float", "Pearson r", "its gain on this maze"),
    ),
)


def ranking_rows(f: Finished) -> Iterator[dict[str, Any]]:
    yield from f.body["ranking"]


def maze_rows(f: Finished) -> Iterator[dict[str, Any]]:
    for m in f.body["mazes"]:
        for prop, top in m["top"].items():
            yield {"seed": m["seed"], **maze_keys(m), "property": prop, **top}


STUDY = Study(
    name="feature-map",
    help="Read a dictionary's features: what each feature's map tracks, against the channels and a shuffled control.",
    options=FeatureMapOptions,
    check=check,
    plan=plan,
    report=report,
    summary=summary,
    # Each maze's controls depend on its own seed alone, so a run given more seeds reuses the finished mazes.
    grows=True,
    tables=(StudyTable(RANKING, ranking_rows), StudyTable(MAZES, maze_rows)),
)


__all__ = ["STUDY"]
