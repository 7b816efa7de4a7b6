"""The compiled units (steer.net.compiled): bit for bit eager's numbers, used only where nothing inside is needed,
and a clean fall-back to eager wherever they cannot be built, loaded or trusted.

The packages are built once per machine into its cache (the same folder `steer tune` fills), so only the first
test session on a machine pays the compile (75 s on one core of a 2-core AMD EPYC).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _cli import run, write_spec
from _harness import LAYER

from steer.analysis.chain import behaviour
from steer.net import checkpoints, compiled
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import FieldInputs, facing_fields, facing_inputs, vector_field, vector_fields
from steer.run.cores import usable_cores
from steer.studies import run_spec


@pytest.fixture(scope="module")
def packages() -> Path:
    directory = compiled.package_dir()
    compiled.build(checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy, directory, log=lambda _: None,
                   workers=usable_cores())  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def exact_here(packages, easy, hard) -> None:
    """Bit-identity is what `steer tune` checks per CPU, not a promise for every CPU: where the units differ from
    eager here, tune keeps eager (test_an_inexact_path_is_never_chosen) and the bit-for-bit tests skip, saying so."""
    policy = checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy
    compiled.attach(policy, directory=packages, force=True)
    observations = [FieldInputs.render(r, r.level(s)).obs for r, s in ((easy, 28), (hard, 100))]
    exact, gap = compiled.exactness(policy, observations, LAYER)
    if not exact:
        pytest.skip(f"the compiled units differ from eager by up to {gap:.1e} on this CPU: steer tune keeps eager here")


@pytest.fixture()
def both(packages, exact_here):
    """The default checkpoint twice: eager, and with the compiled units attached."""
    eager = checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy
    eager.use_units([])
    fast = checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy
    assert compiled.attach(fast, directory=packages, force=True) == "compiled"
    return eager, fast


def _count_calls(policy) -> dict[str, int]:
    calls: dict[str, int] = {}
    wrapped = []
    for unit in policy.fused_units:

        def fn(x, unit=unit):
            calls[unit.first] = calls.get(unit.first, 0) + 1
            return unit.fn(x)

        wrapped.append(type(unit)(unit.first, unit.outputs, unit.input, unit.in_shape, fn))
    policy.use_units(wrapped)
    return calls


@pytest.mark.parametrize("mode,seed", [("easy", 28), ("hard", 100)])
def test_compiled_fields_have_eager_bits_on_both_modes(both, easy, hard, mode, seed) -> None:
    eager, fast = both
    renderer = easy if mode == "easy" else hard
    maze = renderer.level(seed)
    vec = compute_vector(eager, renderer, maze, PairSpec("cheese"), LAYER)
    assert torch.equal(vec.tensor, compute_vector(fast, renderer, maze, PairSpec("cheese"), LAYER).tensor)
    calls = _count_calls(fast)
    out = []
    for policy in (eager, fast):
        inputs = FieldInputs.render(renderer, maze)
        fields = vector_fields(policy, inputs, LAYER, [None, -1.0 * vec.tensor, 2.0 * vec.tensor])
        full = vector_field(policy, inputs, reuse_from=None)  # one whole pass, no prefix reuse
        both_facings = facing_fields(policy, facing_inputs(renderer, maze), [(), [(LAYER, vec.tensor, -1.0)]])
        out.append([f.probs for f in fields] + [full.probs] + [f.probs for f in both_facings])
        if policy is fast:
            chains = [behaviour(f) for f in both_facings]
    for a, b in zip(*out, strict=True):
        assert np.array_equal(a, b)  # bit for bit, not within a tolerance
    assert calls and all(n > 0 for n in calls.values()), "the compiled units never ran"
    eager_chains = [
        behaviour(f) for f in facing_fields(eager, facing_inputs(renderer, maze), [(), [(LAYER, vec.tensor, -1.0)]])
    ]
    assert [c.to_json() for c in chains] == [c.to_json() for c in eager_chains]


def test_units_run_only_where_nothing_inside_them_is_needed(both, easy) -> None:
    eager, fast = both
    maze = easy.level(3)
    obs = FieldInputs.render(easy, maze).obs
    calls = _count_calls(fast)
    delta = torch.randn(eager.activation_shape("block2.res1.conv1"))
    results = []
    for policy in (eager, fast):
        # a hook inside block2.res1 (its conv1): that unit must run eagerly, the others compiled
        remove = policy.add_hook("block2.res1.conv1", lambda x: x + delta)
        try:
            with torch.inference_mode():
                results.append(policy.run({"input": obs}, keep=frozenset({"fc_policy"}))["fc_policy"])
        finally:
            remove()
    assert torch.equal(*results)
    assert "block2.res1.relu1" not in calls and calls["block2.res2.relu1"] == 1 and calls["block1.conv"] == 1
    # Keeping every value (keep=None) needs every site: no unit runs.
    calls.clear()
    with torch.inference_mode():
        every = fast.run({"input": obs})
    assert not calls and "block2.res1.conv2" in every


def test_a_run_writes_the_same_numbers_eager_and_compiled(packages, exact_here, tmp_path, monkeypatch) -> None:
    spec = write_spec(
        tmp_path, {"name": "same", "seeds": [1, 5], "layer": LAYER, "vector": {"kind": "cheese"}, "coeff": -1}
    )
    reports = {}
    for path in ("eager", "compiled"):
        monkeypatch.setenv(compiled.EXECUTION_ENV, path)
        monkeypatch.setenv("STEER_CACHE_DIR", str(packages.parent.parent))
        reports[path] = run_spec("apply", spec, tmp_path / path, workers=1)
    assert reports["compiled"]["provenance"]["machine"]["network"] == "compiled"
    assert reports["eager"]["provenance"]["machine"]["network"] == "eager"
    for r in reports.values():
        r.pop("provenance")
    assert reports["eager"] == reports["compiled"]
    for name in ("metrics.json",):
        a = json.loads((tmp_path / "eager" / name).read_text())
        b = json.loads((tmp_path / "compiled" / name).read_text())
        a.pop("provenance"), b.pop("provenance")
        assert a == b


def test_without_packages_or_a_choice_the_network_runs_eagerly(tmp_path, policy) -> None:
    assert compiled.attach(policy, directory=tmp_path) == "eager"  # never tuned here
    assert not policy.fused_units
    assert "has not run on this machine" in compiled.describe(policy, tmp_path)
    # A choice of compiled with a truncated package: eager, and the line says why.
    (tmp_path / "choice.json").write_text(json.dumps({**_choice("compiled"), "speedup": 1.2}))
    for unit in compiled.units(policy):
        (tmp_path / f"{unit.key(policy)}.pt2").write_bytes(b"not a package")
    assert compiled.attach(policy, directory=tmp_path) == "eager"
    assert "could not be loaded" in compiled.describe(policy, tmp_path)


def test_tune_keeps_eager_where_the_units_cannot_compile(tmp_path, policy, monkeypatch, easy) -> None:
    # No C++ compiler: inductor fails at its first compile, tune records eager and says why.
    monkeypatch.setenv("CXX", "/nonexistent/g++")  # read by inductor in the processes that compile
    obs = FieldInputs.render(easy, easy.level(1)).obs
    choice = compiled.tune(policy, [obs], LAYER, 61.2e6, directory=tmp_path, log=lambda _: None)
    assert choice.path == "eager" and "could not compile" in choice.why and "C++ compiler" in choice.why
    assert compiled.read_choice(tmp_path) == choice
    assert not policy.fused_units


def test_an_inexact_path_is_never_chosen(packages, tmp_path, monkeypatch, easy) -> None:
    policy = checkpoints.load(checkpoints.DEFAULT_CHECKPOINT).policy
    for unit in compiled.units(policy):
        source = packages / f"{unit.key(policy)}.pt2"
        (tmp_path / source.name).write_bytes(source.read_bytes())
    monkeypatch.setattr(compiled, "exactness", lambda *_: (False, 3e-7))  # as on a CPU where the bits differ
    obs = FieldInputs.render(easy, easy.level(1)).obs
    choice = compiled.tune(policy, [obs], LAYER, 61.2e6, directory=tmp_path, log=lambda _: None)
    assert choice.path == "eager" and "differ from eager" in choice.why and not policy.fused_units


def test_an_unknown_execution_setting_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(compiled.EXECUTION_ENV, "turbo")
    spec = write_spec(tmp_path, {"name": "x", "seeds": [1], "layer": LAYER, "vector": {"kind": "cheese"}, "coeff": -1})
    result = run("apply", spec, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "STEER_EXECUTION: 'turbo' is not an execution path" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def _choice(path: str) -> dict:
    return {
        "path": path, "why": "", "exact": True, "speedup": 1.0, "eager_gflops": 1.0, "compiled_gflops": 1.0,
        "cpu": compiled.cpu_model(), "isa": "", "torch": torch.__version__,
    }  # fmt: skip
