"""Retargeting on the real checkpoint: the square -> activation position map, pixel patches, exact P(reach a
target) against sampled episodes, the controls (the decoy from the maze's own open squares, random channels at
their natural scale, the same channels at another square, flat mazes in the distance claim), `steer channels`
and `steer retarget` end to end, and their bad-input rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _charts import intervals, nan, panels
from _cli import run, write_spec
from _tables import check_tables
from scipy import stats

from steer.analysis.chain import Reach, behaviour, build_chain, reach
from steer.analysis.episodes import sample_episodes
from steer.analysis.retarget import (
    Condition,
    MazeRetarget,
    cheese_maps,
    decoy_square,
    elsewhere_squares,
    patches_for,
    path_spearman,
)
from steer.analysis.retarget_summary import maze_entry, summaries_over_mazes, target_rows
from steer.errors import SteerError
from steer.net.retarget import PixelPatch, activation_position, pixel_fields, pixel_patching
from steer.net.vfield import action_probs, facing_fields, facing_inputs
from steer.report.retarget_figs import LABELS, reach_by_distance_chart

SITE = "block2.res1.resadd_out"


# -- the square -> activation position map ---------------------------------------------------------------


def test_activation_position_covers_the_grid_in_order(easy) -> None:
    maze = easy.level(0)
    world = maze.world_dim
    rows = [activation_position(maze, (r, 0), 16)[0] for r in range(world)]
    cols = [activation_position(maze, (0, c), 16)[1] for c in range(world)]
    # Row 0 of the world is the bottom of the image: tensor rows fall as world rows rise; columns rise together.
    assert rows == sorted(rows, reverse=True) and cols == sorted(cols)
    assert len(set(rows)) == world and len(set(cols)) == world  # 15 squares onto 16 positions: no two share one
    assert activation_position(maze, (world - 1, 0), 16) == (0, 0)
    assert activation_position(maze, (0, world - 1), 16) == (15, 15)
    assert activation_position(maze, (world - 1, world - 1), 8) == (0, 7)  # block3's 8x8 grid
    with pytest.raises(SteerError, match=r"outside the 15x15 world"):
        activation_position(maze, (world, 0), 16)


def test_the_cheese_vector_peaks_where_the_map_puts_the_cheese(policy, easy) -> None:
    """The activation change from removing the cheese, summed over channels, is largest at (or next to) the
    position the map gives for the cheese's square, on every one of these mazes."""
    for seed in (1, 2, 3, 4, 5, 8):
        maze = easy.level(seed)
        _, delta = cheese_maps(policy, easy, maze, SITE)
        energy = (delta**2).sum(axis=0)
        peak = np.unravel_index(energy.argmax(), energy.shape)
        r, c = activation_position(maze, maze.cheese, energy.shape[0])
        assert max(abs(peak[0] - r), abs(peak[1] - c)) <= 1, (seed, peak, (r, c))


# -- pixel patches ------------------------------------------------------------------------------------------


def test_setting_a_channel_to_its_own_value_changes_nothing(policy, easy) -> None:
    """Each observation patched with the value its own activation already has gives its unpatched probabilities;
    another value changes them (so the comparison can fail)."""
    maze = easy.level(5).without_cheese()
    inputs = facing_inputs(easy, maze)
    (original,) = facing_fields(policy, inputs, [()])
    acts = inputs.prefix(policy, policy.resolve(SITE), 64)[policy.resolve(SITE)]
    n = len(original.positions)
    pos = activation_position(maze, maze.top_right_square, 16)
    for k in (0, 7, n + 3):  # a few observations, in both facings
        own = float(acts[k, 10, pos[0], pos[1]])
        same, other = pixel_fields(
            policy, inputs, [PixelPatch(SITE, (10,), pos, own), PixelPatch(SITE, (10,), pos, own + 5.0)]
        )
        facing, i = divmod(k, n)
        assert np.array_equal(same.probs[facing, i], original.probs[facing, i])
        assert np.abs(other.probs[facing, i] - original.probs[facing, i]).max() > 1e-4


def test_batched_pixel_fields_equal_the_hooked_forward_pass(policy, easy) -> None:
    maze = easy.level(0).without_cheese()
    inputs = facing_inputs(easy, maze)
    patches = [PixelPatch(SITE, (10, 27), (7, 8), 2.3), PixelPatch(SITE, (10,), (5, 9), 5.5, default=0.0)]
    fields = pixel_fields(policy, inputs, patches)
    for patch, field in zip(patches, fields, strict=True):
        with torch.inference_mode(), pixel_patching(policy, patch):
            logits, _ = policy(inputs.obs)
        hooked = action_probs(logits).numpy().reshape(field.probs.shape)
        assert np.allclose(hooked, field.probs, atol=1e-6)


def test_procgen_tools_first_map_differs_from_each_observation_s_own(policy, easy) -> None:
    maze = easy.level(5).without_cheese()
    inputs = facing_inputs(easy, maze)
    own, first = pixel_fields(
        policy,
        inputs,
        [PixelPatch(SITE, (10, 27), (4, 11), 2.3), PixelPatch(SITE, (10, 27), (4, 11), 2.3, first_map=True)],
    )
    assert np.array_equal(own.probs[0, 0], first.probs[0, 0])  # the first observation's map is its own
    assert np.abs(own.probs - first.probs).max() > 1e-3


def test_a_patch_with_one_value_per_channel_sets_each_channel_to_its_own(policy, easy) -> None:
    maze = easy.level(5).without_cheese()
    site = policy.resolve(SITE)
    acts = facing_inputs(easy, maze).prefix(policy, site, 64)[site]
    patch = PixelPatch(SITE, (3, 19, 8), (6, 9), (0.5, -1.25, 2.0))
    out = patch.apply(acts)
    assert out[:, 3, 6, 9].eq(0.5).all() and out[:, 19, 6, 9].eq(-1.25).all() and out[:, 8, 6, 9].eq(2.0).all()
    changed = (out != acts).nonzero()[:, 1:].unique(dim=0).tolist()  # (channel, row, col) of every change
    assert sorted(changed) == [[3, 6, 9], [8, 6, 9], [19, 6, 9]]
    with pytest.raises(SteerError, match="3 channels was given 2 values"):
        PixelPatch(SITE, (3, 19, 8), (6, 9), (0.5, 1.0))


# -- exact reach -------------------------------------------------------------------------------------------


def test_reach_agrees_with_behaviours_visit_probabilities(policy, easy) -> None:
    maze = easy.level(3).without_cheese()
    (field,) = facing_fields(policy, facing_inputs(easy, maze), [()])
    chain = build_chain(field)
    targets = [sq for sq in maze.open_squares() if sq != maze.mouse][:12]
    r = reach(chain, targets)
    b = behaviour(chain, {f"t{i}": sq for i, sq in enumerate(targets)})
    assert np.allclose(r.p, list(b.p_targets.values()), atol=1e-12)
    assert reach(chain, [maze.mouse]).p[0] == 1.0 and reach(chain, [maze.mouse]).steps[0] == 0.0


def test_exact_reach_under_the_intervention_agrees_with_sampled_episodes(policy, easy) -> None:
    """Real procgen episodes with the pixel patch hooked in: the exact chain's P(reach the target) lies in the 99%
    Clopper-Pearson interval of the share of episodes that step on it. The cheese stays, so episodes end when
    it is eaten (short episodes) and the target competes with it."""
    maze = easy.level(3)
    target = (5, 11)  # a square of the 9x9 maze near the cheese at (7, 11): the two compete
    patch = PixelPatch(SITE, (10,), activation_position(maze, target, 16), 5.5)
    inputs = facing_inputs(easy, maze)
    (field,) = pixel_fields(policy, inputs, [patch])
    exact = reach(build_chain(field), [target])
    p = float(exact.p[0])
    assert 0.05 < p < 0.95, p  # a probability the sample can miss on either side
    with pixel_patching(policy, patch):
        eps = sample_episodes(policy, maze, 300, seed=7, prefill=easy)
    hits = sum(e.visited(target) for e in eps.episodes)
    ci = stats.binomtest(hits, eps.n).proportion_ci(0.99)
    assert ci.low <= p <= ci.high, (p, hits, eps.n)


# -- the controls --------------------------------------------------------------------------------------------


def test_the_decoy_is_one_of_the_maze_s_own_open_squares_never_on_the_cheese(easy, hard) -> None:
    """On every maze and grid: an open square of the maze itself, not the mouse's start, not on the cheese's
    activation position; the same square every time it is drawn, and not one square for every maze."""
    shared = 0  # mazes where some open square shares the cheese's position: the exclusion is exercised
    for renderer, seeds in ((easy, range(40)), (hard, range(8))):
        for grid in (16, 8):
            drawn = []
            for seed in seeds:
                maze = renderer.level(seed)
                at = activation_position(maze, maze.cheese, grid)
                others = [sq for sq in maze.open_squares() if sq != maze.cheese]
                shared += any(activation_position(maze, sq, grid) == at for sq in others)
                decoy = decoy_square(maze, grid, 0, seed)
                assert decoy is not None and decoy in maze.open_squares(), (seed, decoy)
                assert decoy != maze.cheese and decoy != maze.mouse
                assert activation_position(maze, decoy, grid) != at
                assert decoy_square(maze, grid, 0, seed) == decoy
                drawn.append(decoy)
            assert len(set(drawn)) > len(drawn) // 2
    assert shared > 0
    maze = easy.level(7)
    assert len({decoy_square(maze, 16, s, 7) for s in range(10)}) > 1  # the seed value draws it


def test_elsewhere_squares_are_other_open_squares_off_the_target_s_position(easy) -> None:
    maze = easy.level(4).without_cheese()
    targets = [sq for sq in maze.open_squares() if sq != maze.mouse]
    at = elsewhere_squares(maze, targets, 16, 0, 4)
    assert at is not None and len(at) == len(targets)
    for t, sq in zip(targets, at, strict=True):
        assert sq in maze.open_squares() and sq != maze.mouse
        assert activation_position(maze, sq, 16) != activation_position(maze, t, 16)
    assert len(set(at)) > len(at) // 4  # drawn per target, not one square for all
    # Per target: the same square whatever the other targets are.
    assert elsewhere_squares(maze, targets[5:9], 16, 0, 4) == at[5:9]
    assert elsewhere_squares(maze, targets, 16, 1, 4) != at


def test_path_spearman_gives_flat_mazes_zero_and_leaves_out_one_target() -> None:
    assert path_spearman([0, 1, 2, 5], [0.3, 0.3, 0.3, 0.3]) == (0.0, "flat")
    assert path_spearman([2, 2, 2], [0.9, 0.1, 0.5]) == (0.0, "flat")  # every target as far from the path
    assert path_spearman([0, 1, 2], [1.0, 1.0 - 1e-13, 1.0]) == (0.0, "flat")  # float error is not a trend
    assert path_spearman([3], [0.4]) == (None, "excluded")
    assert path_spearman([None, 3], [0.1, 0.4]) == (None, "excluded")  # no distance: not a target of the claim
    rho, status = path_spearman([0, 1, 2, 4, 3], [0.9, 0.8, 0.3, 0.1, 0.2])
    assert status == "defined" and rho == pytest.approx(stats.spearmanr([0, 1, 2, 4, 3], [0.9, 0.8, 0.3, 0.1, 0.2])[0])


def test_a_flat_maze_enters_the_distance_claim_as_zero_and_is_counted(easy) -> None:
    """A maze where the intervention reaches every target alike enters the Spearman summaries with rho 0 (in n,
    counted as flat); a maze of one target is left out, counted with its reason."""
    entries = []
    for seed, n_targets, flat in ((1, 30, False), (2, 30, True), (3, 1, False)):
        maze = easy.level(seed).without_cheese()
        targets = tuple(sq for sq in maze.open_squares() if sq != maze.mouse)[:n_targets]
        none = np.linspace(0.1, 0.9, len(targets))
        chosen = np.full(len(targets), 0.75) if flat else none[::-1].copy()
        conditions = {
            name: Reach(targets, p, np.full(len(targets), 10.0))
            for name, p in (("intervention", chosen), ("random", none), ("none", none))
        }
        result = MazeRetarget(maze, targets, conditions, {k: r.p for k, r in conditions.items()}, {})
        patched = {"intervention": Condition((10,), 5.5), "random": Condition((20,), 5.5)}
        entries.append(maze_entry(seed, result, target_rows(result), patched, {}))
    assert entries[1]["spearman_path_distance"] == 0.0
    assert entries[1]["spearman_status"]["spearman_path_distance"] == "flat"
    assert entries[1]["spearman_status"]["spearman_path_distance_gain"] == "defined"  # 0.75 - none varies
    assert entries[2]["spearman_path_distance"] is None
    s = summaries_over_mazes(entries)["spearman_path_distance"]
    assert s["n"] == 2 and s["flat"] == 1 and s["excluded"] == 1
    assert s["why_excluded"] == {"fewer than 2 targets with a distance from the path": 1}
    assert s["mean"] == pytest.approx(entries[0]["spearman_path_distance"] / 2)


# -- the commands ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def channels_out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("channels")
    result = run("channels", write_spec(folder, {"seeds": {"from": 1, "to": 8}, "top": 3}), "--out", folder / "out")
    assert result.exit_code == 0, result.output
    assert "ranked by mean peak distance" in result.output
    return folder / "out"


def test_channels_ranks_every_channel_with_intervals_and_a_shuffled_control(channels_out: Path) -> None:
    report = json.loads((channels_out / "metrics.json").read_text())
    ranking = report["ranking"]
    assert sorted(r["channel"] for r in ranking) == list(range(32))
    means = [r["peak_distance"]["mean"] for r in ranking]
    assert means == sorted(means)
    for row in ranking:
        assert row["peak_distance"]["n"] == 8 and row["peak_distance_shuffled"]["n"] == 8
        assert row["peak_distance"]["mean_ci"] is not None
        assert "wilcoxon_p" in row["peak_distance_gain"]
    for m in report["mazes"]:
        assert m["seed"] in range(1, 9) and len(m["peak_distance"]) == 32
    # The best channel locates the cheese: nearer its own maze's cheese than the shuffled one on average.
    assert ranking[0]["peak_distance_gain"]["mean"] > 0
    assert ranking[0]["peak_distance"]["mean"] < ranking[-1]["peak_distance"]["mean"]
    assert (channels_out / "channels.png").stat().st_size > 10_000
    check_tables(channels_out)


def test_channels_scores_each_maze_against_a_decoy_among_its_own_open_squares(channels_out: Path, policy, easy) -> None:
    """The recorded decoy is the maze's own open square off the cheese, and the shuffled scores are measured at
    it: each channel's peak distance to the decoy's position, recomputed here from the activations."""
    report = json.loads((channels_out / "metrics.json").read_text())
    for m in report["mazes"]:
        maze = easy.level(m["seed"])
        decoy = tuple(m["decoy"])
        assert decoy in maze.open_squares() and decoy != maze.cheese and list(maze.cheese) == m["cheese"]
        assert activation_position(maze, decoy, 16) != activation_position(maze, maze.cheese, 16)
    m = report["mazes"][2]
    maze = easy.level(m["seed"])
    acts, _ = cheese_maps(policy, easy, maze, SITE)
    rows, cols = np.divmod(acts.reshape(32, -1).argmax(axis=1), 16)
    r, c = activation_position(maze, tuple(m["decoy"]), 16)
    assert np.allclose(m["peak_distance_shuffled"], np.hypot(rows - r, cols - c))
    assert np.allclose(m["max_activation"], acts.reshape(32, -1).max(axis=1))


@pytest.fixture(scope="module")
def retarget_out(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("retarget")
    spec = {"seeds": [0, 5], "channels": {"top": 2}, "value": 5.5, "targets": "all", "show": [5]}
    result = run("retarget", write_spec(folder, spec), "--out", folder / "out")
    assert result.exit_code == 0, result.output
    assert "mean P(reach target) channels set at the target" in result.output
    return folder / "out"


def test_retarget_reports_every_target_under_every_condition(retarget_out: Path, easy) -> None:
    report = json.loads((retarget_out / "metrics.json").read_text())
    assert len(report["channels"]) == 2 and report["cheese"] == "remove"
    assert not set(report["channels"]) & {c for m in report["mazes"] for c in m["random_channels"]}
    for seed in (0, 5):
        per = json.loads((retarget_out / f"retarget-seed{seed}.json").read_text())
        maze = easy.level(seed).without_cheese()
        assert [tuple(t["square"]) for t in per["targets"]] == [sq for sq in maze.open_squares() if sq != maze.mouse]
        for t in per["targets"]:
            for cond in ("intervention", "none", "cheese_moved", "random", "random_scaled", "elsewhere"):
                assert 0.0 <= t[cond]["p_reach"] <= 1.0
            assert 0.0 <= t["intervention"]["geometric_path_p"] <= 1.0
            assert t["distance_from_start"] == len(maze.shortest_path(maze.mouse, tuple(t["square"]))) - 1
    s = report["summary"]
    assert s["mazes"] == 2 and s["intervention"]["p_reach"]["n"] == 2
    assert set(s["intervention_minus"]) == {"none", "cheese_moved", "random", "random_scaled", "elsewhere"}
    for name in ("random_scaled", "elsewhere"):
        assert s[name]["p_reach"]["n"] == 2 and s[name]["p_reach"]["excluded"] == 0
        assert [m[name]["p_reach"] is not None for m in report["mazes"]] == [True, True]
    for key in ("spearman_path_distance", "spearman_path_distance_gain"):
        assert s[key]["n"] + s[key]["excluded"] == 2 and "flat" in s[key]
    assert "resampling" in s
    names = {p.name for p in retarget_out.iterdir()}
    assert {"retarget-map-seed5.png", "retarget-by-start-distance.png", "retarget-by-path-distance.png"} <= names
    assert "retarget-map-seed0.png" not in names
    check_tables(retarget_out)
    # The by-distance chart, drawn again from metrics.json: a row per bin (its n in the label), per condition
    # the mean P(reach) over mazes and its 95% interval where there is one.
    for key in ("by_start_distance", "by_path_distance"):
        (ax,) = panels(reach_by_distance_chart(s, key, key, "run"))
        bins = list(s["intervention"][key])
        assert [t.get_text() for t in ax.get_yticklabels()] == [
            f"{b} (n {s['intervention'][key][b]['n']})" for b in bins
        ]
        for name in s["conditions"]:
            xs, spans = intervals(ax, LABELS[name])
            rows = [s[name][key][b] for b in bins]
            np.testing.assert_array_equal(xs, nan([r["mean"] for r in rows]))
            assert spans == [tuple(r["mean_ci"]) for r in rows if r["mean_ci"]]


def test_random_scaled_sets_each_random_channel_to_the_chosen_multiple_of_its_own_natural_max(
    retarget_out: Path, policy, easy
) -> None:
    """The natural maxima, recomputed here (the mean over the ranking's mazes, the run's seeds 0 and 5 as
    generated, of each channel's largest activation); each random channel's value is the chosen channel's
    multiple of its own natural maximum; the patch with those values sets exactly them in the real activations,
    and gives the P(reach) the run recorded."""
    report = json.loads((retarget_out / "metrics.json").read_text())
    tops = [cheese_maps(policy, easy, easy.level(s), SITE)[0].reshape(32, -1).max(axis=1) for s in (0, 5)]
    natural = np.mean(tops, axis=0)
    assert np.allclose(report["natural_max"]["by_channel"], natural) and report["natural_max"]["mazes"] == 2
    value, chosen = report["value"], report["channels"]
    per = json.loads((retarget_out / "retarget-seed5.json").read_text())
    random = per["random_channels"]
    want = [value / natural[c] * natural[r] for c, r in zip(chosen, random, strict=True)]
    assert np.allclose(per["random_scaled_values"], want)
    assert not np.allclose(want, value)  # the control differs from the absolute one
    maze = easy.level(5).without_cheese()
    row = per["targets"][7]
    target = tuple(row["square"])
    (patch,) = patches_for(maze, [target], SITE, 16, random, tuple(per["random_scaled_values"]))
    inputs = facing_inputs(easy, maze)
    site = policy.resolve(SITE)
    acts = inputs.prefix(policy, site, 64)[site]
    out = patch.apply(acts).numpy()
    r, c = activation_position(maze, target, 16)
    for k, (ch, base) in enumerate(zip(random, chosen, strict=True)):
        assert np.allclose(out[:, ch, r, c] / natural[ch], value / natural[base], rtol=1e-5), k
    (field,) = pixel_fields(policy, inputs, [patch])
    assert float(reach(build_chain(field), [target]).p[0]) == pytest.approx(row["random_scaled"]["p_reach"], abs=1e-9)


def test_elsewhere_sets_the_chosen_channels_at_another_square_and_measures_the_target(
    retarget_out: Path, policy, easy
) -> None:
    report = json.loads((retarget_out / "metrics.json").read_text())
    per = json.loads((retarget_out / "retarget-seed5.json").read_text())
    maze = easy.level(5).without_cheese()
    targets = [tuple(t["square"]) for t in per["targets"]]
    at = [tuple(t["elsewhere"]["square"]) for t in per["targets"]]
    assert at == elsewhere_squares(maze, targets, 16, 0, 5)  # drawn from control_seed 0 and the seed
    for t, sq in zip(targets, at, strict=True):
        assert sq in maze.open_squares() and activation_position(maze, sq, 16) != activation_position(maze, t, 16)
    j = 7
    (patch,) = patches_for(maze, [targets[j]], SITE, 16, report["channels"], report["value"], at=[at[j]])
    assert patch.position == activation_position(maze, at[j], 16) != activation_position(maze, targets[j], 16)
    (field,) = pixel_fields(policy, facing_inputs(easy, maze), [patch])
    p = float(reach(build_chain(field), [targets[j]]).p[0])  # P(reach the target), not the square set
    assert p == pytest.approx(per["targets"][j]["elsewhere"]["p_reach"], abs=1e-9)
    assert p != pytest.approx(per["targets"][j]["intervention"]["p_reach"], abs=1e-6)


BAD = [
    ({"channels": [32]}, "channels[0]: 32 is not a channel of"),
    ({"value": float("nan")}, "value: nan is not a finite number"),
    ({"value": "inf"}, "value: 'inf' is not a finite number"),
    ({"targets": [[1, 1]]}, "targets[0]: [1, 1] is a wall in seed 5's maze"),
    ({"targets": [[15, 3]]}, "targets[0]: [15, 3] is outside the 15x15 world"),
    ({"layer": "fc"}, "layer: 'fc' has activations of shape (256,), with no spatial map"),
    ({"channels": []}, "channels: the list is empty"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_retarget_bad_input_is_one_clear_message_and_writes_nothing(tmp_path: Path, change: dict, message: str) -> None:
    spec = {"seeds": [5], "channels": [10], "value": 5.5, **change}
    out = tmp_path / "out"
    result = run("retarget", write_spec(tmp_path, spec), "--out", out)
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_channels_refuses_a_layer_without_a_spatial_map(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run("channels", write_spec(tmp_path, {"seeds": [1, 2], "layer": "fc"}), "--out", out)
    assert result.exit_code == 2 and "layer: 'fc' has activations of shape (256,)" in result.output
    assert not out.exists()


@pytest.mark.parametrize(
    ("top", "message"),
    [(0, "top: 0 is out of range; use an integer from 1 to 64."), ("six", "top: expected an integer, got a string")],
)
def test_channels_top_is_a_whole_number_of_channels(tmp_path: Path, top: object, message: str) -> None:
    out = tmp_path / "out"
    result = run("channels", write_spec(tmp_path, {"seeds": [1, 2], "top": top}), "--out", out)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()


# -- the explorer's retarget mode ----------------------------------------------------------------------------


def test_the_explorer_sends_the_agent_to_a_clicked_square(ckpt, easy) -> None:
    testclient = pytest.importorskip("starlette.testclient", reason="Starlette's TestClient needs httpx")
    from steer.explore.app import create_app
    from steer.explore.state import Explorer

    explorer = Explorer(ckpt)
    client = testclient.TestClient(create_app(explorer, port=8123), base_url="http://127.0.0.1:8123")
    page = client.get("/").text
    assert "send the agent here (retarget)" in page
    channels = explorer.cheese_channels()
    assert len(channels) == 2 and all(0 <= c < 32 for c in channels)
    request = {"seed": 3, "channels": channels, "value": 5.5, "target": [5, 11]}
    response = client.post("/api/retarget", json=request)
    assert response.status_code == 200, response.text
    view = response.json()
    # The same numbers as the library computes for that patch on that maze.
    maze = easy.level(3)
    patch = PixelPatch(SITE, tuple(channels), activation_position(maze, (5, 11), 16), 5.5)
    (field,) = pixel_fields(ckpt.policy, facing_inputs(easy, maze), [patch])
    assert view["p_reach"]["intervention"] == pytest.approx(float(reach(build_chain(field), [(5, 11)]).p[0]), abs=1e-9)
    assert view["positions"] == [list(p) for p in field.positions]
    assert len(view["patched"]["arrows"]) == len(field.positions)
    assert view["p_reach"]["intervention"] > view["p_reach"]["none"]
    for bad, message in (
        ({"value": "nan"}, "value: 'nan' is not a finite number"),
        ({"target": [1, 1]}, "target: [1, 1] is a wall in seed 3's maze"),
        ({"channels": [40]}, "channels[0]: 40 is not a channel"),
        ({"coeff": 1}, "'coeff': unknown parameter"),
    ):
        response = client.post("/api/retarget", json={**request, **bad})
        assert response.status_code == 400 and message in response.json()["error"], response.text


def test_map_labels_show_one_only_for_what_rounds_to_one() -> None:
    from steer.report.retarget_figs import _label

    assert [_label(p) for p in (0.0, 0.004, 0.5, 0.994, 0.996, 1.0)] == [".00", ".00", ".50", ".99", "1", "1"]
