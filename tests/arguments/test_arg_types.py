"""Value converters: the spellings launch scripts use, and clear errors otherwise."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slime.arguments.arg_types import human_readable_int, json_object, moe_freq_type


@pytest.mark.parametrize(("text", "value"), [("4096", 4096), ("32k", 32000), ("1.5M", 1_500_000), ("4Gi", 4 * 2**30)])
def test_human_readable_int(text, value):
    assert human_readable_int(text) == value


@pytest.mark.parametrize("text", ["1.5Gi", "12 k", "lots"])
def test_human_readable_int_rejects(text):
    with pytest.raises(argparse.ArgumentTypeError):
        human_readable_int(text)


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("[0,1,1]", [0, 1, 1]), ("([0]*3+[1]*2)", [0, 0, 0, 1, 1]), ("[1]*2", [1, 1]),
])
def test_moe_freq_type(text, value):
    assert moe_freq_type(text) == value


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "[2,1]", "[0]*'a'", "open('x')", ""])
def test_moe_freq_type_evaluates_no_code(text):
    with pytest.raises(argparse.ArgumentTypeError):
        moe_freq_type(text)


@given(st.lists(st.integers(0, 1), min_size=1, max_size=64))
def test_moe_freq_type_round_trips_any_pattern(pattern):
    assert moe_freq_type(str(pattern)) == pattern
    assert moe_freq_type(str(pattern).replace(" ", "")) == pattern


def test_json_object():
    assert json_object('{"A": "1"}') == {"A": "1"}
    with pytest.raises(argparse.ArgumentTypeError, match="expected a JSON object"):
        json_object("[1]")
    with pytest.raises(argparse.ArgumentTypeError, match="expected a JSON object"):
        json_object("{nope")
