"""Vector fields are exact: they match the procgen-tools pipeline, re-implemented independently."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from steer.net.hooks import patching
from steer.net.reference import ReferencePolicy, reference_field
from steer.net.vectors import PairSpec, compute_vector
from steer.net.vfield import FieldInputs, action_probs, vector_field


@pytest.fixture(scope="module")
def reference(ckpt):
    return ReferencePolicy(torch.load(ckpt.path, map_location="cpu", weights_only=False)["state_dict"])


@pytest.mark.parametrize("seed", [2, 28])
def test_fields_match_the_research_pipeline(renderer, policy, reference, seed: int) -> None:
    maze = renderer.level(seed)
    vec = compute_vector(policy, renderer, maze, PairSpec("cheese"), "block2.res1.resadd_out")
    inputs = FieldInputs.render(renderer, maze)
    for coeff in (None, -1.0):
        patches = [] if coeff is None else [(vec.layer, vec.tensor, coeff)]
        ours = vector_field(policy, inputs, patches)
        patch = None if coeff is None else ("embedder.block2.res1.resadd", vec.tensor, coeff)
        positions, probs = reference_field(reference, maze.to_bytes(), renderer.mode, patch)
        assert sorted(positions) == sorted(ours.positions)
        assert maze.cheese not in ours.positions
        mine = dict(zip(ours.positions, ours.probs, strict=True))
        np.testing.assert_allclose(np.stack([mine[p] for p in positions]), probs, rtol=0, atol=1e-6)


def test_arrows_are_net_direction_probabilities(easy, policy) -> None:
    field = vector_field(policy, FieldInputs.render(easy, easy.level(28)))
    p = field.probs
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(field.arrows[:, 0], p[:, 6:9].sum(-1) - p[:, 0:3].sum(-1), atol=1e-6)
    np.testing.assert_allclose(field.arrows[:, 1], p[:, 5] - p[:, 3], atol=1e-6)


def test_the_unpatched_policy_heads_for_the_cheese(easy, policy) -> None:
    """A trained policy's field should lead to the cheese on most squares; a broken render would not."""
    from steer.analysis.metrics import p_toward

    values = []
    for seed in range(10):
        maze = easy.level(seed)
        values.append(p_toward(vector_field(policy, FieldInputs.render(easy, maze)), maze.cheese))
    assert np.median(values) > 0.8


def test_batched_fields_equal_separate_patched_passes(easy, policy) -> None:
    from steer.net.vfield import vector_fields

    maze = easy.level(4)
    vec = compute_vector(policy, easy, maze, PairSpec("cheese"), "block2.res1.resadd_out").tensor
    inputs = FieldInputs.render(easy, maze)
    coeffs = [-2.0, 0.5, 3.0]
    batched = vector_fields(policy, inputs, "block2.res1.resadd_out", [None, *(c * vec for c in coeffs)], batch_size=40)
    separate = [vector_field(policy, inputs, reuse_from="block1.conv")]
    separate += [vector_field(policy, inputs, [("block2.res1.resadd_out", vec, c)]) for c in coeffs]
    for a, b in zip(batched, separate, strict=True):
        assert a.positions == b.positions
        np.testing.assert_allclose(a.probs, b.probs, rtol=0, atol=1e-6)
    assert not np.allclose(batched[0].probs, batched[1].probs)


def test_a_patched_field_is_the_same_whatever_was_computed_before(easy, policy) -> None:
    """Regression: a prefix memoised under the patch hooks used to carry the patch, which was then added twice."""
    maze = easy.level(4)
    vec = compute_vector(policy, easy, maze, PairSpec("cheese"), "block3.res1.resadd_out").tensor
    patch = [("block3.res1.resadd_out", vec, -1.0)]
    fresh = vector_field(policy, FieldInputs.render(easy, maze), patch)
    warmed = FieldInputs.render(easy, maze)
    vector_field(policy, warmed, reuse_from="block3.res1.resadd_out")
    after_original = vector_field(policy, warmed, patch)
    with torch.no_grad(), patching(policy, patch):
        full = action_probs(policy(warmed.obs)[0]).numpy()
    np.testing.assert_allclose(fresh.probs, full, rtol=0, atol=1e-6)
    np.testing.assert_allclose(after_original.probs, full, rtol=0, atol=1e-6)
