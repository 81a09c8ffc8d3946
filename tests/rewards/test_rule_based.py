"""Upstream slime's rule-based rewards (issue 22, item 4), case by case as its rm_hub grades them: math
needs a \\boxed answer and unwraps a boxed label, deepscaler needs a reasoning marker, dapo reads only an
"Answer:" line in the last 300 characters, f1 of no prediction is 0, gpqa exists; and the hub's order
(the sample's own reward path, --custom-rm-path, the sample's rm_type, --rm-type, boxed_ types)."""

from __future__ import annotations

import argparse

import pytest

from slime.rewards.dapo import dapo_score
from slime.rewards.gpqa import gpqa_reward
from slime.rewards.hub import BUILT_IN, RewardDispatch, f1_score, reward_value, score
from slime.rewards.math_reward import deepscaler_correct, math_correct
from slime.rollout.sample import Sample
from slime.arguments.parser import ArgumentProblems, parse_args
from tests.helpers.command_lines import MINIMAL

HERE = "tests.rewards.test_rule_based"


@pytest.mark.parametrize(("response", "label", "want"), [
    ("just 42", "42", 0),  # no \boxed: no answer (ours used to take the last number)
    (r"\boxed{42}", "42", 1),
    (r"\boxed{42}", r"\boxed{42}", 1),  # a boxed label is unwrapped
    (r"\boxed{\frac12}", r"\frac{1}{2}", 1),
    (r"\boxed{45^\circ}", "45", 1),
    (r"\boxed{0.5}", r"\frac{1}{2}", 1),
    (r"\boxed{x = 5}", "5", 1),
    (r"\boxed{42}", "", 0),
    (r"\boxed{2\sqrt{2}}", r"\sqrt{8}", 1),  # by sympy
    (r"\boxed{\frac{2}{4}}", r"\frac{1}{2}", 0),  # an unreduced fraction is not the reduced one
    (r"\boxed{(1, 2)}", "[1, 2]", 0),  # an open interval is not a closed one
    (r"\fbox{42}", "42", 0),  # upstream reads \fbox only inside a text that has \boxed
])
def test_math(response, label, want):
    assert int(math_correct(response, label)) == want


@pytest.mark.parametrize(("response", "label", "want"), [
    (r"\boxed{42}", "42", 0),  # no </think> and no ###Response: 0 (ours graded the whole text)
    (r"Let me reconsider. \boxed{99}</think>Final: \boxed{42}", "42", 1),
    (r"Scratch \boxed{wrong}###Response\boxed{42}", "42", 1),
    ("plain</think>no box here", "42", 0),
    (r"</think>\boxed{\frac{1}{2}}", "0.5", 1),
    (None, "42", 0),
    (r"</think>\boxed{7}", ["6", "7"], 1),  # any of several labels
])
def test_deepscaler(response, label, want):
    assert int(deepscaler_correct(response, label)) == want


def test_dapo_reads_an_answer_line_in_the_last_300_characters():
    assert dapo_score("First 1 + 41, so\nAnswer: 42", "42") == {"score": 1.0, "acc": True, "pred": "42"}
    assert dapo_score(r"\boxed{42}", "42")["score"] == -1.0  # no Answer: line; \boxed is not read
    assert dapo_score("Answer: 42\n" + "x" * 301, "42")["score"] == -1.0  # the line lies before the window
    assert dapo_score("Answer: $1,000$ dollars", "1000")["score"] == 1.0
    with pytest.raises(ValueError):
        dapo_score("Answer: 1/2", "1/2")  # DAPO's labels are integers


def test_dapo_needs_its_reward_key():
    with pytest.raises(ArgumentProblems, match="add --reward-key score"):
        parse_args([*MINIMAL, "--rm-type", "dapo"])
    assert parse_args([*MINIMAL, "--rm-type", "dapo", "--reward-key", "score"]).reward_key == "score"
    assert reward_value(dapo_score("Answer: 3", "3"), "score") == 1.0
    with pytest.raises(ValueError, match="say which entry is the reward with --reward-key"):
        reward_value({"score": 1.0}, None)


def test_f1():
    assert f1_score(None, "x") == (0.0, 0.0, 0.0)  # ours raised
    assert f1_score("yes", "no")[0] == 0.0 and f1_score("no", "no")[0] == 1.0
    assert f1_score("", "")[0] == 0.0  # no common word (ours gave 1)
    assert f1_score("the cat sat down", "cat sat")[0] == pytest.approx(0.8)


FOUR = {"choices": ["fire", "water", "earth", "air"]}


@pytest.mark.parametrize(("response", "label", "metadata", "want"), [
    ("The answer is (B)", "B", None, 0.0),  # letters A-J: "answer is" reads the I of "is"
    ("The answer is (B)", "B", FOUR, 1.0),
    ("Answer: C", "C", None, 1.0),
    ("<think>maybe A</think> Final answer: D", "D", None, 1.0),
    ("I pick B", 1, None, 1.0),  # a number label indexes the letters
    ("it is water", "water", {"choices": ["fire", "water"]}, 1.0),
    (None, "A", None, 0.0),
    ("no letter here", "A", None, 0.0),
])
def test_gpqa(response, label, metadata, want):
    assert gpqa_reward(response, label, dict(metadata) if metadata else None) == want


def args(**kw):
    return argparse.Namespace(**{"rm_type": None, "custom_rm_path": None, "reward_key": None, "rm_url": None, **kw})


def sample(response, label, **fields):
    return Sample(group_index=0, index=0, prompt="q", response=response, label=label, **fields)


async def upstream_style_reward(args, sample, **kwargs):
    return 0.5


def plain_reward(args, sample):
    return 0.25


def test_the_hub_dispatches_as_upstreams_async_rm():
    reward = RewardDispatch(args(rm_type="math"))
    assert reward(sample(r"\boxed{3}", "3")) == 1
    assert reward(sample(r"\boxed{3}", "3", metadata={"rm_type": "f1"})) == 0.0  # the sample's rm_type wins
    assert reward(sample(r"\boxed{3}", "3", metadata={"rm_type": " boxed_f1 "})) == 1.0  # the boxed content
    assert RewardDispatch(args(rm_type="boxed_math"))(sample(r"\boxed{3}", "3")) == 0  # upstream: "3" has no \boxed
    own = sample("x", "y", custom_rm_path=f"{HERE}.plain_reward")
    assert RewardDispatch(args(custom_rm_path=f"{HERE}.upstream_style_reward"))(own) == 0.25  # the sample's own first
    assert RewardDispatch(args(custom_rm_path=f"{HERE}.upstream_style_reward"))(sample("x", "y")) == 0.5
    assert RewardDispatch(args(rm_type="random"))(sample("x", "y")) in (0, 1)
    with pytest.raises(NotImplementedError, match="no reward: set --rm-type"):
        RewardDispatch(args())(sample("x", "y"))
    assert set(BUILT_IN) >= {"math", "deepscaler", "dapo", "f1", "gpqa", "random", "remote_rm"}


def test_an_async_custom_reward_scores_in_the_worker_processes():
    batch = [sample("x", "y"), sample("z", "y")]
    assert score(args(custom_rm_path=f"{HERE}.upstream_style_reward"), batch) == 0
    assert [s.reward for s in batch] == [0.5, 0.5]


@pytest.mark.parametrize(("rm_type", "ok"), [("gpqa", True), ("boxed_f1", True), ("random", True),
                                              ("ifbench", False), ("boxed_nothing", False)])
def test_upstreams_reward_types_parse_and_the_missing_ones_are_named(rm_type, ok):
    if ok:
        assert parse_args([*MINIMAL, "--rm-type", rm_type]).rm_type == rm_type
    else:
        with pytest.raises(ArgumentProblems, match=f"--rm-type {rm_type} is not implemented here"):
            parse_args([*MINIMAL, "--rm-type", rm_type])
