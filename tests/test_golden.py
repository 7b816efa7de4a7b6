"""The cross-machine check: this install reproduces the committed golden values within the stated tolerance.

`tests/golden/values.json` was written by `make golden` from an earlier commit, not by the code under test in
this run; any CPU, thread count or kernel choice passes, and a change that moves a number beyond the tolerance
(docs/reproducibility.md) fails, naming each value.
"""

from __future__ import annotations

import json

import torch
from golden import GOLDEN, TOLERANCE, compute, differences


def test_this_install_reproduces_the_golden_values_within_the_tolerance() -> None:
    golden = json.loads(GOLDEN.read_text())
    now = compute()
    problems, drift = differences(golden, now)
    assert not problems, f"{len(problems)} values moved (threads {torch.get_num_threads()}):\n" + "\n".join(
        problems[:20]
    )
    assert set(drift) == set(TOLERANCE)


def test_the_check_fails_when_a_number_moves_past_the_tolerance() -> None:
    golden = json.loads(GOLDEN.read_text())
    moved = json.loads(GOLDEN.read_text())
    moved["mazes"]["easy-3"]["probs_patched"][0][0] += 2 * TOLERANCE["probability"]
    moved["claim"]["verdict"] = "fails"
    problems, _ = differences(golden, moved)
    assert len(problems) == 2 and "easy-3.probs_patched[0][0]" in problems[0] and "verdict" in problems[1]
    within = json.loads(GOLDEN.read_text())
    within["mazes"]["easy-3"]["probs_patched"][0][0] += TOLERANCE["probability"] / 2
    assert differences(golden, within)[0] == []
