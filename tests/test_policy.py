"""The hookable policy and checkpoint loading, on the real default checkpoint."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest
import torch

from steer.errors import SteerError
from steer.net import checkpoints
from steer.net.hooks import patching, recording
from steer.net.policy import ImpalaPolicy, obs_to_tensor


@pytest.fixture(scope="module")
def obs(easy):
    maze = easy.level(28)
    return obs_to_tensor(easy.observe_positions(maze, maze.open_squares()[:16]))


def test_default_checkpoint_is_the_registered_file(ckpt) -> None:
    assert ckpt.sha256 == checkpoints.KNOWN["maze-rr5-easy-160M"].sha256
    assert ckpt.mode == "easy" and ckpt.scale == 1
    assert ckpt.provenance()["parameters"] == 626_256


@pytest.mark.parametrize("name", ["block2.res1.resadd_out", "embedder.block2.res1.resadd_out", "block2.res1.resadd"])
def test_procgen_tools_names_resolve_to_the_same_site(policy, name: str) -> None:
    assert policy.resolve(name) == "block2.res1.resadd"


def test_unknown_layer_lists_valid_names(policy) -> None:
    with pytest.raises(SteerError) as e:
        policy.resolve("block9.conv")
    assert "'block9.conv'" in str(e.value) and "block2.res1.resadd_out" in str(e.value) and "fc_policy" in str(e.value)


def test_every_hook_records_the_expected_shape(policy, obs) -> None:
    names = policy.hook_names
    with torch.no_grad(), recording(policy, names) as acts:
        policy(obs)
    assert acts["block2.res1.resadd_out"].shape == (16, 32, 16, 16)
    assert acts["block3.maxpool"].shape == (16, 32, 8, 8)
    assert acts["fc"].shape == (16, 256)
    # The residual add is conv2 plus the block's stream, before any relu.
    assert torch.allclose(acts["block2.res1.resadd_out"], acts["block2.res1.conv2"] + acts["block2.maxpool"])


def test_patching_adds_exactly_coeff_times_vector_and_is_removed(policy, obs) -> None:
    vec = torch.randn(32, 16, 16)
    with torch.no_grad():
        base_logits, _ = policy(obs)
        with (
            recording(policy, ["block2.res1.conv2", "block2.maxpool"]) as acts,
            patching(policy, [("block2.res1.resadd_out", vec, -2.5)]),
            recording(policy, ["block2.res1.resadd_out"]) as patched,
        ):
            logits, _ = policy(obs)
        expected = acts["block2.res1.conv2"] + acts["block2.maxpool"] - 2.5 * vec
        assert torch.allclose(patched["block2.res1.resadd_out"], expected, atol=1e-5)
        assert not torch.allclose(logits, base_logits)
        after, _ = policy(obs)
    assert torch.equal(after, base_logits)


def test_suffix_from_cached_prefix_equals_full_forward(policy, obs) -> None:
    site = policy.resolve("block2.res1.conv1")
    with torch.no_grad():
        full = policy.run({"input": obs})
        cached = policy.run({"input": obs}, stop=site, keep=policy.prefix_needs(site))
        assert "block2.maxpool" in cached  # the residual stream the suffix still adds back
        suffix = policy.run(cached, start=site)
    assert torch.equal(suffix["fc_policy"], full["fc_policy"])


def test_checkpoint_formats_and_scale_inference(tmp_path: Path, ckpt) -> None:
    state = ckpt.policy.state_dict()
    for i, wrap in enumerate([lambda s: {"state_dict": s}, lambda s: {"model_state_dict": s}, lambda s: s]):
        path = tmp_path / f"c{i}.pth"
        torch.save(wrap(state), path)
        loaded = checkpoints.load(path)
        assert loaded.scale == 1 and loaded.mode == "easy"
        assert all(torch.equal(a, b) for a, b in zip(loaded.policy.state_dict().values(), state.values(), strict=True))
    big = tmp_path / "scale4.pth"
    torch.save({"model_state_dict": ImpalaPolicy(4).state_dict()}, big)
    loaded = checkpoints.load(big)
    assert loaded.scale == 4 and loaded.mode == "hard"
    assert loaded.policy.resolve("block2.res1.resadd_out") == "block2.res1.resadd"


def test_bad_checkpoints_say_how_to_provide_one(tmp_path: Path) -> None:
    with pytest.raises(SteerError, match=r"does not exist.*--checkpoint"):
        checkpoints.load(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SteerError, match="could not be read"):
        checkpoints.load(junk)
    other = tmp_path / "other.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(SteerError, match="not an Impala maze policy"):
        checkpoints.load(other)
    with pytest.raises(SteerError, match="neither a file nor a known checkpoint"):
        checkpoints.load("no-such-model")


def test_a_known_name_with_the_wrong_bytes_is_refused(tmp_path: Path, ckpt, monkeypatch) -> None:
    fake = tmp_path / "checkpoints" / "maze-rr5-easy-2M.pth"
    fake.parent.mkdir()
    torch.save({"state_dict": ckpt.policy.state_dict()}, fake)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SteerError, match="sha256"):
        checkpoints.load("maze-rr5-easy-2M")


def test_environment_variable_selects_the_checkpoint(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv(checkpoints.ENV_VAR, str(tmp_path / "nope.pth"))
    with pytest.raises(SteerError, match=r"nope\.pth"):
        checkpoints.locate(None)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the tuning is glibc's mallopt")
def test_allocator_tuning_takes_effect_on_glibc() -> None:
    from steer.run.allocator import keep_freed_memory

    assert keep_freed_memory() is True
