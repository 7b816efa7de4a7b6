"""`steer feature-map` on the real checkpoint: the target maps sit where their squares are (a map that is the
target scores r = 1), a dictionary whose features are the channels scores exactly as the channels do, the study
writes per-maze gains a claim can read, its ranking and its cards, and bad input exits 2 with nothing written.
Five small mazes (dimension 3 to 9) keep it to seconds."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _tables import check_tables

from steer.analysis.claim_measures import keyed
from steer.analysis.feature_maps import bump, covered, maze_maps, unit_scores
from steer.net.dictionary_files import DictionaryMeta, dictionary_bytes
from steer.net.retarget import activation_position
from steer.net.sae import FitSettings, TopKSAE

SITE = "block2.res1.resadd_out"
SEEDS = [0, 5, 14, 29, 8]


def channels_as_features(channels: int = 32, shift: float = 100.0) -> TopKSAE:
    """Feature i's code is channel i plus `shift` at every position (all kept, all positive): a correlation does
    not see a constant, so each feature's scores must equal its channel's."""
    sae = TopKSAE(channels, channels, channels)
    with torch.no_grad():
        sae.W_enc.copy_(torch.eye(channels))
        sae.W_dec.copy_(torch.eye(channels))
        sae.b_enc.fill_(shift)
    return sae


def test_a_map_that_is_its_target_scores_one_and_beats_its_control(easy) -> None:
    maze = easy.level(8)  # 9x9, with a decision square
    grid = 16
    mask, where = covered(maze, grid)
    mice = [sq for sq in maze.open_squares() if sq != maze.cheese][:6]
    maps = np.zeros((len(mice), 2, grid, grid))
    maps[:, 0] = bump([where[maze.cheese]], grid).reshape(grid, grid)  # unit 0: the cheese, in every state
    for i, m in enumerate(mice):
        maps[i, 1] = bump([where[m]], grid).reshape(grid, grid)  # unit 1: wherever the mouse is
    scores, missing = unit_scores(maze, mice, maps, grid, 0, 8, 8)
    assert missing == {}
    assert scores["cheese"].score[0] == pytest.approx(1.0) and scores["cheese"].control[0] < 0.9
    assert scores["mouse"].score[1] == pytest.approx(1.0) and scores["mouse"].control[1] < 0.9
    assert scores["cheese"].gain[1] < scores["cheese"].gain[0]
    assert mask.sum() == len(set(where.values())) and where[maze.cheese] == np.ravel_multi_index(
        activation_position(maze, maze.cheese, grid), (grid, grid)
    )


def test_features_that_are_the_channels_score_as_the_channels(policy, easy) -> None:
    maze = easy.level(5)
    m = maze_maps(policy, easy, maze, SITE, channels_as_features(), 16, 0, 5, 8, 64)
    assert set(m.features) == set(m.channels) == {"cheese", "mouse", "top_right", "walls"}  # no decision square
    assert m.missing == {"decision": "no decision square (the cheese is on the path to the top-right)"}
    for prop, f in m.features.items():
        c = m.channels[prop]
        np.testing.assert_allclose(np.array(f.score, float), np.array(c.score, float), atol=1e-4)
        np.testing.assert_allclose(np.array(f.control, float), np.array(c.control, float), atol=1e-4)


@pytest.fixture(scope="module")
def dictionary(tmp_path_factory, ckpt) -> Path:
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (0,), 1, FitSettings(32, 1, 1, 0), "test")
    path = tmp_path_factory.mktemp("dict") / "dictionary.safetensors"
    path.write_bytes(dictionary_bytes(channels_as_features(), meta.to_strings()))
    return path


@pytest.fixture(scope="module")
def mapped(tmp_path_factory, dictionary) -> Path:
    folder = tmp_path_factory.mktemp("feature-map")
    spec = write_spec(folder, {"seeds": SEEDS, "dictionary": str(dictionary), "draws": 4, "cards": 2, "card_mazes": 2})
    result = run("feature-map", spec, "--out", folder / "run", "--workers", 1)
    assert result.exit_code == 0, result.output
    return folder / "run"


def test_the_study_writes_gains_a_claim_reads_its_ranking_and_cards(mapped) -> None:
    report = json.loads((mapped / "metrics.json").read_text())
    mazes = report["mazes"]
    assert [m["seed"] for m in mazes] == SEEDS
    for m in mazes:  # the features are the channels: the same gains, maze by maze
        for f, c in zip(m["by_feature"], m["by_channel"], strict=True):
            for prop in ("cheese", "mouse", "walls"):
                assert f[prop] == pytest.approx(c[prop], abs=1e-4)
    leaders = report["leaders"]
    assert set(leaders) == {"cheese", "mouse", "walls"}  # top-right and decision: fewer than 5 mazes
    assert leaders["cheese"]["feature"] == leaders["cheese"]["channel"]
    best = next(r for r in report["ranking"] if (r["kind"], r["property"], r["rank"]) == ("channel", "cheese", 1))
    assert best["n"] == 5 and best["gain_ci_low"] > 0  # some channel tracks the cheese beyond its control
    # The claims engine reads each maze's gain of a named feature, and the top feature against the top channel.
    reports = {"read": report}
    named = keyed(reports, {"experiment": "read", "kind": "value", "source": "by_feature.3", "metric": "cheese"})
    assert list(named.values) == SEEDS and named.values[0] == pytest.approx(mazes[0]["by_feature"][3]["cheese"])
    versus = keyed(
        reports,
        {
            "experiment": "read",
            "kind": "versus",
            "source": "top.cheese",
            "metric": "feature_gain",
            "minus": {"experiment": "read", "kind": "value", "source": "top.cheese", "metric": "channel_gain"},
        },
    )
    assert len(versus.values) == 5 and all(abs(v) < 1e-4 for v in versus.values.values())
    table = list(csv.DictReader((mapped / "ranking.csv").open()))
    assert len(table) == 2 * 32 * 5
    row = next(r for r in table if r["kind"] == "channel" and r["property"] == "cheese" and r["rank"] == "1")
    assert int(row["unit"]) == leaders["cheese"]["channel"] and row["n"] == "5"
    assert float(row["gain"]) == pytest.approx(float(row["score"]) - float(row["control"]), abs=1e-9)
    cards = {f"card-feature{c['feature']}.png" for c in report["cards"]}
    assert cards == {p.name for p in mapped.glob("card-feature*.png")} and len(cards) == 2
    assert len(report["cards"]) == 2 and "## cheese" in (mapped / "features.md").read_text()
    check_tables(mapped)


def test_bad_input_is_refused_with_nothing_written(tmp_path, dictionary) -> None:
    meta = DictionaryMeta(SITE, "other", "0" * 64, (0,), 1, FitSettings(32, 1, 1, 0), "test")
    other = tmp_path / "other.safetensors"
    other.write_bytes(dictionary_bytes(channels_as_features(), meta.to_strings()))
    for spec, words in (
        ({"seeds": [0], "dictionary": str(other)}, "features are directions of another network"),
        ({"seeds": [0]}, "dictionary: missing"),
        ({"seeds": [0], "dictionary": str(dictionary), "site": "block2.res9"}, "'block2.res9' is not a hook point"),
        ({"seeds": [0], "dictionary": str(dictionary), "site": "fc"}, "with no spatial map"),
        ({"seeds": [0], "dictionary": str(dictionary), "site": "block2.res2.resadd_out"}, "Set `site: block2.res1"),
    ):
        out = tmp_path / "out"
        result = run("feature-map", write_spec(tmp_path, spec), "--out", out)
        assert result.exit_code == 2, result.output
        assert words in " ".join(result.output.split()) and "Traceback" not in result.output
        assert not out.exists()
