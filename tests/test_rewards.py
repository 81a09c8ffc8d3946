"""The reward hub and its built-in rewards."""

from __future__ import annotations

import argparse

import pytest

from slime.rewards.hub import RewardFailure, f1_score, score
from slime.rewards.math_reward import extract_answer, is_equivalent, last_boxed, math_correct
from slime.rollout.sample import Sample


def args(**kw):
    base = {"rm_type": None, "custom_rm_path": None, "reward_key": None, "rm_url": None}
    return argparse.Namespace(**{**base, **kw})


def samples(*pairs):
    return [Sample(group_index=i, index=i, prompt="q", response=r, label=label) for i, (r, label) in enumerate(pairs)]


def test_boxed_answers_nest():
    assert last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert extract_answer("the answer is 42.") == "42"
    assert extract_answer("no number") is None


@pytest.mark.parametrize(("predicted", "label"), [
    ("0.5", "1/2"), (r"\frac{1}{2}", "0.5"), (r"\dfrac{3}{4}", "0.75"), ("50%", "0.5"), ("1,000", "1000"),
    ("$12$", "12"), (r"\text{7}", "7"), ("3.", "3"), ("-2", "-2.0"),
])
def test_numeric_equivalence(predicted, label):
    assert is_equivalent(predicted, label)


def test_math_correct_and_wrong():
    assert math_correct(r"We get \boxed{6}.", 6)
    assert not math_correct(r"We get \boxed{7}.", 6)
    assert not math_correct("I don't know", 6)


def test_hub_rewards():
    batch = samples((r"\boxed{2}", "2"), (r"\boxed{3}", "2"))
    score(args(rm_type="math"), batch)
    assert [s.reward for s in batch] == [1.0, 0.0]
    batch = samples(("<think>\\boxed{9}</think> \\boxed{2}", "2"), (r"\boxed{3}", "2"))
    score(args(rm_type="dapo"), batch)
    assert [s.reward for s in batch] == [1.0, -1.0]
    batch = samples((" 4 ", "4"), ("44", "4"))
    score(args(rm_type="exact_match"), batch)
    assert [s.reward for s in batch] == [1.0, 0.0]


def test_f1():
    assert f1_score("The cat sat", "cat sat") == 1.0
    assert f1_score("a dog", "the cat") == 0.0
    assert f1_score("cat dog", "cat") == pytest.approx(2 / 3)


def flaky(args, sample):
    if sample.index == 0:
        raise ValueError("label missing")
    return 1.0


def broken(args, sample):
    raise KeyError("answer")


def returns_dict(args, sample):
    return {"acc": 0.25, "format": 1.0}


def test_a_failing_reward_is_reported_not_a_crash():
    batch = samples(("a", 1), ("b", 1))
    failed = score(args(custom_rm_path="tests.test_rewards:flaky"), batch)
    assert failed == 1 and batch[0].reward == 0.0 and batch[1].reward == 1.0
    assert batch[0].metadata["reward_error"] == "ValueError: label missing"


def test_a_reward_failing_everywhere_stops_with_its_error():
    with pytest.raises(RewardFailure, match="tests.test_rewards:broken.*KeyError: 'answer'"):
        score(args(custom_rm_path="tests.test_rewards:broken"), samples(("a", 1), ("b", 1)))


def test_custom_reward_returning_a_dict_uses_the_reward_key():
    batch = samples(("a", 1))
    score(args(custom_rm_path="tests.test_rewards.returns_dict", reward_key="acc"), batch)
    assert batch[0].reward == 0.25
