"""Bad tokens are reported all at once, each with what would be right; nothing is silently ignored."""

from __future__ import annotations

import pytest

from slime.arguments.parser import ArgumentProblems, parse_args
from slime.arguments.parser import parse_argv
from slime.launch.plan import build_plan
from tests.helpers.command_lines import MINIMAL


def _problems(argv):
    with pytest.raises(ArgumentProblems) as caught:
        parse_args(argv, validate=False)
    return [p.message for p in caught.value.problems]


@pytest.mark.parametrize(("typo", "suggestion"), [
    ("--num-layer", "--num-layers"),
    ("--rollout-batchsize", "--rollout-batch-size"),
    ("--sglang-mem-fraction", "--sglang-mem-fraction-static"),
    ("--tensor-parallel-size", "--tensor-model-parallel-size"),
    ("--kl-los-coef", "--kl-loss-coef"),
])
def test_unknown_flag_suggests_the_closest(typo, suggestion):
    assert _problems([typo, "1"]) == [f"unknown flag {typo}: did you mean {suggestion}?"]


def test_unknown_flag_without_a_close_match_says_so():
    assert "no similar flag" in _problems(["--frobnicate"])[0]


def test_sglang_settings_slime_owns_point_to_the_slime_flag():
    assert _problems(["--sglang-tp-size", "4"]) == [
        "unknown flag --sglang-tp-size: slime sets SGLang's --tp-size itself: use --rollout-num-gpus-per-engine"]
    assert "leave it out" in _problems(["--sglang-port", "30000"])[0]


def test_abbreviations_are_not_accepted():
    assert "did you mean --rollout-batch-size" in _problems(["--rollout-batch", "8"])[0]


def test_every_bad_token_is_reported_at_once():
    messages = _problems(["stray", "--num-layer", "2", "--lr", "abc", "--normalization", "BatchNorm",
                          "--colocate", "yes", "--rotary-base=1.5"])
    assert len(messages) == 6
    assert messages[0] == "unexpected value(s) 'stray' before any flag"
    assert "invalid float value: 'abc'" in messages[2]
    assert "invalid choice: 'BatchNorm'" in messages[3]
    assert messages[4] == "--colocate takes no value, got extra 'yes'"
    assert "invalid int value: '1.5'" in messages[5]


@pytest.mark.parametrize("argv", [["--lr", "-1e-5"], ["--lr=-1e-5"], ["--lr", "-.5"]])
def test_negative_numbers_are_values(argv):
    assert parse_args(argv, validate=False).lr < 0


def test_retired_sglang_spellings_set_the_current_setting():
    args = parse_args(["--sglang-cuda-graph-bs", "1", "2", "--sglang-nsa-decode-backend", "fa3"], validate=False)
    assert args.sglang_cuda_graph_bs_decode == [1, 2]
    assert args.sglang_dsa_decode_backend == "fa3"


def test_negatable_flags_stay_unset_unless_given():
    assert parse_args([], validate=False).offload_train is None
    assert parse_args(["--offload-train"], validate=False).offload_train is True
    assert parse_args(["--no-offload-train"], validate=False).offload_train is False


def test_defaults_are_upstream_slimes():
    args = parse_argv([])
    assert args.lr == 1e-6 and args.micro_batch_size == 1  # Megatron flags whose defaults slime resets
    assert args.mtp_loss_scaling_factor == 0.2
    assert args.rollout_max_response_len is None
    assert args.rollout_function_path == "slime.rollout.sglang_rollout.generate_rollout"


def test_a_run_without_lr_or_micro_batch_size_trains_with_upstreams_defaults():
    without = [t for t in MINIMAL if t not in ("--lr", "1e-6")]
    args = parse_args(without)
    assert args.lr == 1e-6 and args.micro_batch_size == 1 and "micro_batch_size" not in args.derived_values
    assert build_plan(args)["per_rollout"]["micro_batch_size"] == 1


def test_loss_mask_type_accepts_qwen3_5():
    assert parse_argv(["--loss-mask-type", "qwen3_5"]).loss_mask_type == "qwen3_5"
