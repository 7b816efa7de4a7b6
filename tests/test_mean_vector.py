"""Mean-difference vectors (`vector: {kind, source_seeds}`): parsing, and that the mean is the plain average of
the per-maze vectors (real checkpoint, small easy mazes)."""

from __future__ import annotations

import pytest
import torch
from _harness import LAYER

from steer.errors import SteerError
from steer.run.session import Session
from steer.run.spec_values import parse_vector
from steer.run.vector_plan import build_vector, plan_vector
from steer.studies import STUDIES


def test_parse_source_seeds() -> None:
    assert parse_vector({"kind": "cheese", "source_seeds": {"from": 3, "to": 5}}).source_seeds == (3, 4, 5)
    assert parse_vector({"kind": "cheese", "source_seeds": [0, 2]}).source_seeds == (0, 2)
    with pytest.raises(SteerError, match=r"vector\.source_seeds\[1\]: seed 5 is listed twice"):
        parse_vector({"kind": "cheese", "source_seeds": [5, 5]})
    with pytest.raises(SteerError, match="not both"):
        parse_vector({"kind": "cheese", "source_seed": 1, "source_seeds": [0, 2]})
    with pytest.raises(SteerError, match=r"vector\.source_seeds: a vector file"):
        parse_vector({"file": "v.pt", "source_seeds": [0, 2]})


APPLY = STUDIES["apply"]


@pytest.fixture(scope="module")
def session(ckpt, easy) -> Session:
    return Session(ckpt, "easy", "spec", easy)


def _plan(session: Session, sources: object):
    spec = APPLY.parse({"seeds": [0], "coeff": 1, "vector": {"kind": "cheese", "source_seeds": sources}})
    return spec, plan_vector(session, spec, spec.options.vector, 1.0, "vector")


def test_mean_of_one_seed_is_its_vector(session: Session) -> None:
    spec, plan = _plan(session, [0])
    assert spec.options.vector.pair is not None and plan.fixed is not None
    own = build_vector(session, spec, 0, spec.options.vector.pair, LAYER)
    assert torch.equal(plan.fixed.tensor, own.tensor)
    assert plan.fixed.meta["source_seeds"] == [0] and plan.fixed.meta["skipped_source_seeds"] == []
    assert plan.describe()["source_seeds"] == [0] and "mean of 1 mazes" in plan.label


def test_mean_of_two_seeds_is_their_average(session: Session) -> None:
    spec, plan = _plan(session, [0, 29])
    assert spec.options.vector.pair is not None and plan.fixed is not None
    a, b = (build_vector(session, spec, s, spec.options.vector.pair, LAYER).tensor for s in (0, 29))
    torch.testing.assert_close(plan.fixed.tensor, (a + b) / 2)


def test_unbuildable_seeds_are_skipped_and_listed(session: Session) -> None:
    spec = APPLY.parse(
        {
            "seeds": [0],
            "coeff": 1,
            "target_edits": ["remove_cheese"],
            "vector": {"kind": "cheese", "source_seeds": [0, 29]},
        }
    )
    with pytest.raises(SteerError, match=r"vector\.source_seeds: none of the 2 seeds"):
        plan_vector(session, spec, spec.options.vector, 1.0, "vector")
    # Seed 6 fills the world: its top-right pair cannot be built, so the mean is of seed 0 alone.
    spec = APPLY.parse({"seeds": [0], "coeff": 1, "vector": {"kind": "top_right", "source_seeds": [0, 6]}})
    plan = plan_vector(session, spec, spec.options.vector, 1.0, "vector")
    assert plan.fixed is not None
    assert plan.fixed.meta["source_seeds"] == [0] and plan.fixed.meta["skipped_source_seeds"] == [6]


@pytest.mark.parametrize(
    ("command", "extra", "message"),
    [
        ("compute-vector", {}, "vector.source_seeds: compute-vector writes one vector per seed"),
        ("layer-sweep", {"coeff": -1}, "without file, source_seed or source_seeds"),
    ],
)
def test_studies_that_build_their_own_vectors_refuse_a_mean(command: str, extra: dict, message: str) -> None:
    from steer.studies import STUDIES

    spec = {"seeds": [0], "vector": {"kind": "cheese", "source_seeds": [0, 1]}, **extra}
    with pytest.raises(SteerError, match=message.replace(".", r"\.")):
        STUDIES[command].parse(spec)
