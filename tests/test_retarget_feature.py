"""`steer retarget`'s `feature: {file, index, value}` on the real checkpoint: a feature clamped to the code it
already has leaves every target's exact P(reach) as the unpatched policy's, bit for bit; with the identity dictionary
(feature c is channel c) the clamp is the channel set to the value only where the channel is not negative; the
random control moves the channel vector by the clamp's own norm; a run reports the feature beside the channels, its
natural scale and tables, and a claim reads it; a spec without the key keeps its identity; bad inputs exit 2 with
nothing written. One small maze, a few targets and `--workers 1` keep it to seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _tables import check_tables

from steer.analysis.chain import build_chain, reach
from steer.analysis.claim_measures import measure
from steer.analysis.feature_clamp import FeatureCondition, clamp_patches, random_direction
from steer.analysis.retarget import retarget_maze
from steer.net.dictionary_files import DictionaryMeta, dictionary_bytes, read_dictionary
from steer.net.feature_vectors import clamped, codes, norm_matched
from steer.net.retarget import PixelPatch, activation_position, pixel_fields
from steer.net.sae import FitSettings, TopKSAE
from steer.net.vfield import facing_inputs
from steer.run.runner import option_files
from steer.studies.retarget import STUDY

SITE = "block2.res1.resadd_out"
SETTINGS = FitSettings(k=8, expansion=2, epochs=1, seed=0)
SEED = 0  # a small easy maze


def _dictionary(path: Path, ckpt, sae: TopKSAE, **change: str) -> Path:
    meta = DictionaryMeta(SITE, ckpt.name, ckpt.sha256, (1,), 1, SETTINGS, "")
    path.write_bytes(dictionary_bytes(sae, meta.to_strings() | change))
    return path


def _constant_feature(code: float) -> TopKSAE:
    """The identity dictionary and one more feature (index 64) whose code is `code` at every position, whatever the
    activations: clamping it to `code` is clamping it to the code it already has."""
    sae = TopKSAE(32, 65, 65)
    eye = torch.eye(32)
    direction = torch.linspace(-1, 1, 32)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye, torch.zeros(32, 1)], dim=1))
        sae.W_dec.copy_(torch.cat([eye, -eye, (direction / direction.norm())[None]], dim=0))
        sae.b_enc[64] = code
    return sae


def _targets(maze) -> list:
    return [sq for sq in maze.open_squares() if sq != maze.mouse][:4]


def test_a_feature_clamped_to_the_code_it_already_has_gives_the_unpatched_reach_exactly(policy, easy) -> None:
    maze = easy.level(SEED).without_cheese()
    targets = _targets(maze)
    sae = _constant_feature(1.5)
    own = FeatureCondition(sae, 64, 1.5)
    control = FeatureCondition(sae, 64, 1.5, random_direction(32, 0, SEED))
    moved = FeatureCondition(sae, 64, 6.0)
    result = retarget_maze(
        policy, easy, maze, targets, SITE, {"own": own, "control": control, "moved": moved}, cheese_moved=False
    )
    none = result.conditions["none"].p
    assert np.array_equal(result.conditions["own"].p, none)  # bit for bit, every target
    assert np.array_equal(result.conditions["control"].p, none)  # |value - code| = 0: no change either
    assert not np.allclose(result.conditions["moved"].p, none, atol=1e-6)  # the check can fail


def test_with_the_identity_dictionary_the_clamp_sets_the_channel_only_where_it_is_not_negative(policy, easy) -> None:
    """Feature c of the identity dictionary has code ReLU(x_c), so clamping it to v gives x_c + (v - ReLU(x_c)): v
    where x_c >= 0 (to float rounding: x + (v - x) need not be v bit for bit), x_c + v where x_c < 0. The `feature`
    condition is therefore the channel intervention on that one channel only where the channel is not negative."""
    maze = easy.level(SEED).without_cheese()
    inputs = facing_inputs(easy, maze)
    site = policy.resolve(SITE)
    x = inputs.prefix(policy, site, 64)[site]
    target = _targets(maze)[0]
    r, c = activation_position(maze, target, 16)
    (clamp,) = clamp_patches(maze, [target], SITE, 16, FeatureCondition(TopKSAE.identity(32), 10, 5.5))
    channel = PixelPatch(SITE, (10,), (r, c), 5.5)
    got, want = clamp.apply(x), channel.apply(x)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, 10, r, c] = False
    assert torch.equal(got[mask], x[mask])  # everything else exact
    here = x[:, 10, r, c]
    torch.testing.assert_close(
        got[:, 10, r, c], torch.where(here >= 0, want[:, 10, r, c], here + 5.5), rtol=0, atol=1e-6
    )
    assert (here < 0).any()  # channel 10 is negative off the cheese: there the clamp is not the channel set
    assert not torch.allclose(got, want)
    # Shift the code so that it is never 0 (b_enc + 50): then the clamp to v + 50 is the channel set to v, to float
    # rounding, in every observation, and the exact reach agrees with the channel intervention's.
    shifted = TopKSAE.identity(32)
    with torch.no_grad():
        shifted.b_enc[10] = 50.0
    (clamp,) = clamp_patches(maze, [target], SITE, 16, FeatureCondition(shifted, 10, 55.5))
    torch.testing.assert_close(clamp.apply(x), want, rtol=0, atol=1e-5)
    a, b = pixel_fields(policy, inputs, [clamp, channel])
    assert float(reach(build_chain(a), [target]).p[0]) == pytest.approx(reach(build_chain(b), [target]).p[0], abs=1e-5)


def test_the_random_control_moves_each_observation_by_the_clamps_own_norm(policy, easy) -> None:
    maze = easy.level(SEED).without_cheese()
    site = policy.resolve(SITE)
    x = facing_inputs(easy, maze).prefix(policy, site, 64)[site]
    sae = TopKSAE(32, 64, 8)
    w = torch.randn(64, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        sae.W_dec.copy_(w / w.norm(dim=1, keepdim=True))
        sae.W_enc.copy_(sae.W_dec.T)
    position = (8, 6)
    u = random_direction(32, 0, SEED)
    assert torch.equal(u, random_direction(32, 0, SEED)) and not torch.equal(u, random_direction(32, 0, SEED + 1))
    feature = clamped(sae, 5, [position], 4.0)(x) - x
    control = norm_matched(sae, 5, [position], 4.0, u)(x) - x
    at = (slice(None), slice(None), *position)
    torch.testing.assert_close(control[at].norm(dim=1), feature[at].norm(dim=1), rtol=1e-5, atol=1e-6)
    assert (control[at].norm(dim=1) > 0).any()
    off = torch.ones(16, 16, dtype=torch.bool)
    off[position] = False
    assert not control[:, :, off].any() and not feature[:, :, off].any()  # nowhere else
    cos = (control[at] @ u) / control[at].norm(dim=1).clamp(min=1e-12)
    assert torch.allclose(cos[control[at].norm(dim=1) > 0], torch.tensor(1.0))  # along u


@pytest.fixture(scope="module")
def clamp_run(tmp_path_factory, ckpt) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("retarget-feature")
    sae = TopKSAE.identity(32)
    dictionary = _dictionary(folder / "identity.safetensors", ckpt, sae)
    spec = {
        "seeds": [SEED],
        "channels": [10],
        "value": 5.5,
        "targets": "all",
        "cheese_moved": False,
        "resample": False,
        "feature": {"file": "identity.safetensors", "index": 10, "value": 5.5},  # found beside the spec
    }
    result = run("retarget", write_spec(folder, spec), "--out", folder / "out", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "mean P(reach target) feature clamped at the target" in result.output
    return folder / "out", dictionary


def test_a_run_reports_the_feature_beside_the_channels_and_its_natural_scale(clamp_run, policy, easy) -> None:
    out, dictionary = clamp_run
    sae = read_dictionary(dictionary).sae  # as the run reads it (k from the file: 8 of the 64 features kept)
    report = json.loads((out / "metrics.json").read_text())
    s = report["summary"]
    assert {"feature", "feature_random", "feature_elsewhere"} <= set(s["conditions"])
    assert set(s["feature_minus"]) == set(s["conditions"]) - {"feature"}
    f = report["feature"]
    assert f["index"] == 10 and f["value"] == 5.5 and f["top_channels"][0] == [10, 1.0]
    # The natural scale, recomputed over the maze as generated (with its cheese).
    level = easy.level(SEED)
    site = policy.resolve(SITE)
    with torch.inference_mode():
        z = codes(sae, 10, facing_inputs(easy, level).prefix(policy, site, 64)[site]).double()
    (m,) = report["mazes"]
    assert m["feature_scale"]["max"] == pytest.approx(float(z.max()))
    assert m["feature_scale"]["mean_active"] == pytest.approx(float(z[z > 0].mean()))
    assert f["natural_scale"]["value_multiple_of_max"] == pytest.approx(5.5 / float(z.max()))
    # Each target's feature_random reach, recomputed from the control's definition (seeded from control_seed 0).
    per = json.loads((out / f"retarget-seed{SEED}.json").read_text())
    maze = level.without_cheese()
    targets = [tuple(t["square"]) for t in per["targets"]]
    cond = FeatureCondition(sae, 10, 5.5, random_direction(32, 0, SEED))
    fields = pixel_fields(policy, facing_inputs(easy, maze), clamp_patches(maze, targets, SITE, 16, cond))
    p = reach([build_chain(fl) for fl in fields], targets).p
    np.testing.assert_allclose(p, [t["feature_random"]["p_reach"] for t in per["targets"]], rtol=0, atol=1e-9)
    assert [t["feature_elsewhere"]["square"] for t in per["targets"]] == [
        t["elsewhere"]["square"] for t in per["targets"]
    ]
    rows = check_tables(out).table("mazes")
    assert set(rows.condition) >= {"feature", "feature_random", "feature_elsewhere"}
    assert (out / f"retarget-map-seed{SEED}.png").exists()


def test_a_claim_reads_the_feature_against_the_channels(clamp_run) -> None:
    out, _ = clamp_run
    report = json.loads((out / "metrics.json").read_text())
    m = {
        "experiment": "x",
        "metric": "p_reach",
        "kind": "versus",
        "source": "feature",
        "minus": {"experiment": "x", "metric": "p_reach", "kind": "value", "source": "intervention"},
    }
    got = measure({"x": report}, m)
    want = [mz["feature"]["p_reach"] - mz["intervention"]["p_reach"] for mz in report["mazes"]]
    assert got["n"] == 1 and got["per_maze"] == pytest.approx(want)


def test_a_spec_without_feature_keeps_its_identity_and_one_with_it_names_the_file(tmp_path, ckpt) -> None:
    base = {"seeds": [0], "channels": {"top": 2}, "value": 5.5}
    plain = STUDY.parse(base, None)
    assert "feature" not in plain.identity() and plain.options.feature is None
    dictionary = _dictionary(tmp_path / "d.safetensors", ckpt, TopKSAE.identity(32))
    spec = STUDY.parse({**base, "feature": {"file": str(dictionary), "index": 3, "value": 2}}, None)
    assert spec.identity()["feature"] == {"file": str(dictionary), "index": 3, "value": 2.0}
    assert set(spec.identity()) - set(plain.identity()) == {"feature"}
    assert str(dictionary) in option_files(spec) and option_files(plain) == {}


@pytest.mark.parametrize(
    ("feature", "extra", "message"),
    [
        ({"file": "other"}, {}, "was fitted with checkpoint 'elsewhere' (sha256 000000000000…), not this run's"),
        ({"file": "missing.safetensors"}, {}, "feature.file: '"),
        ({}, {"layer": "block3.res1.resadd_out"}, "layer: 'block3.res1.resadd_out' is not the site the dictionary"),
        ({"index": 64}, {}, "feature.index: 64 is out of range; the dictionary '"),
        ({"index": -1}, {}, "feature.index: -1 is out of range"),
        ({"value": float("nan")}, {}, "feature.value: nan is not a finite number"),
        ({"value": "inf"}, {}, "feature.value: 'inf' is not a finite number"),
        ({"value": None}, {}, "feature.value: missing"),
        ({"scale": 2}, {}, "feature.scale: unknown key"),
    ],
)
def test_bad_feature_clamps_exit_2_with_nothing_written(tmp_path, ckpt, feature, extra, message) -> None:
    good = _dictionary(tmp_path / "i.safetensors", ckpt, TopKSAE.identity(32))
    if feature.get("file") == "other":
        other = _dictionary(tmp_path / "o.safetensors", ckpt, TopKSAE.identity(32), checkpoint="elsewhere",
                            checkpoint_sha256="0" * 64)  # fmt: skip
        feature = {**feature, "file": str(other)}
    clamp = {"file": str(good), "index": 3, "value": 2.0, **feature}
    spec = {"seeds": [0], "channels": [10], "value": 5.5, "feature": clamp, **extra}
    result = run("retarget", write_spec(tmp_path, spec), "--out", tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()
