"""Where upstream slime's meaning of a flag differs from what this project used to do, upstream's wins:
defaults, function paths in either spelling, the legacy single evaluation path, the debug modes."""

from __future__ import annotations

import pytest

from slime.arguments.parser import ArgumentProblems, parse_args, parse_argv
from slime.arguments.eval_datasets import eval_datasets
from slime.utils.functions import load_function
from slime.launch.plan import build_plan
from tests.conftest import MINIMAL


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


@pytest.mark.parametrize("path", [
    "slime.rollout.sglang_rollout.generate_rollout", "slime.rollout.sglang_rollout:generate_rollout"])
def test_function_paths_load_in_either_spelling(path):
    from slime.rollout.sglang_rollout import generate_rollout

    assert load_function(path) is generate_rollout
    parse_args([*MINIMAL, "--rollout-function-path", path, "--custom-rm-path", path.replace("generate", "x")])


def test_a_function_path_may_name_an_attribute_of_a_class():
    from slime.rollout.sample import Sample

    assert load_function("slime.rollout.sample.Sample.from_dict") == Sample.from_dict
    assert load_function("slime.rollout.sample:Sample.from_dict") == Sample.from_dict


@pytest.mark.parametrize(("path", "message"), [
    ("slime.rollout.nowhere.generate", "cannot import 'slime.rollout' for|has no 'nowhere'"),
    ("slime.rollout.sglang_rollout.missing", "has no 'missing'"),
    ("slime.rollout.sglang_rollout:", "expected module.path.function or module.path:function"),
    ("generate_rollout", "expected module.path.function"),
    ("no_such_package.generate", "no module named 'no_such_package'"),
])
def test_a_bad_function_path_says_what_is_wrong(path, message):
    with pytest.raises(ValueError, match=message):
        load_function(path)


def test_a_missing_dependency_of_the_module_is_named_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "needs_missing.py").write_text("import definitely_not_installed_pkg\ndef f(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="definitely_not_installed_pkg"):
        load_function("needs_missing.f")


def test_one_eval_path_alone_is_upstreams_legacy_aime_dataset():
    args = parse_args([*MINIMAL, "--eval-prompt-data", "/data/aime-2024.jsonl", "--eval-interval", "5"])
    assert eval_datasets(args) == [("aime", "/data/aime-2024.jsonl")]
    assert build_plan(args)["evaluation"]["datasets"] == ["aime"]
    pairs = parse_args([*MINIMAL, "--eval-prompt-data", "aime", "/a.jsonl", "gsm8k", "/g.jsonl"])
    assert eval_datasets(pairs) == [("aime", "/a.jsonl"), ("gsm8k", "/g.jsonl")]


def test_loss_mask_type_accepts_qwen3_5():
    assert parse_argv(["--loss-mask-type", "qwen3_5"]).loss_mask_type == "qwen3_5"


def test_debug_train_only_starts_no_engines_but_runs_the_rollout_function():
    args = parse_args([*MINIMAL, "--debug-train-only", "--rollout-function-path", "my.sft.generate_rollout"])
    plan = build_plan(args)
    assert plan["gpus"]["rollout"] == 0 and plan["rollout"]["server_commands"] == []
    assert args.prompt_data == "/data/train.jsonl"  # the rollout function still gets the prompt data


def test_saved_rollouts_replay_with_or_without_engines():
    replay = ["--load-debug-rollout-data", "/r/{rollout_id}.pt"]
    without = [t for t in MINIMAL if t not in ("--prompt-data", "/data/train.jsonl")]
    assert build_plan(parse_args([*without, *replay, "--debug-train-only"]))["gpus"]["rollout"] == 0
    assert build_plan(parse_args([*without, *replay]))["gpus"]["rollout"] == 8  # engines up, e.g. to evaluate


def test_a_flag_of_a_missing_feature_is_named_when_set_and_silent_at_its_default():
    parse_args([*MINIMAL, "--rollout-task-type", "math", "--update-weight-mode", "full"])
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([*MINIMAL, "--use-opd", "--update-weight-mode", "delta", "--profile-target", "train_actor"])
    messages = [str(p) for p in caught.value.problems]
    assert messages == [
        "--update-weight-mode delta: not implemented yet (delta weight updates); drop the flag (its default, full, runs)",
        "--profile-target train_actor: not implemented yet (profiling); drop the flag (its default, train_overall, runs)",
        "--use-opd: not implemented yet (on-policy distillation); drop the flag",
    ]


def test_tool_definitions_reach_the_chat_template(tmp_path):
    import json

    from slime.rollout.data_source import load_prompts
    from slime.cli.make_tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    tokenizer.chat_template = "{% if tools %}{{ tools | length }}+{% endif %}{% for m in messages %}{{ m.content }}{% endfor %}"
    data = tmp_path / "prompts.jsonl"
    data.write_text(json.dumps({"prompt": "1=", "functions": [{"name": "a"}, {"name": "b"}]}) + "\n"
                    + json.dumps({"prompt": "2="}) + "\n")
    prompts = load_prompts(str(data), tokenizer, input_key="prompt", label_key=None, metadata_key=None,
                           apply_chat_template=True, tool_key="functions")
    assert [p.text for p in prompts] == ["2+1=", "2="]


def test_a_repeatable_flag_is_written_once_per_value_and_parses_back():
    from slime.config.flatten import value_tokens
    from slime.arguments.registry import flag_by_option

    f = flag_by_option()["--rollout-sample-hook-path"]
    tokens = value_tokens(f, "--rollout-sample-hook-path", ["a.b.c", "d.e.f"])
    assert tokens == ["--rollout-sample-hook-path", "a.b.c", "--rollout-sample-hook-path", "d.e.f"]
    assert parse_argv(tokens).rollout_sample_hook_path == ["a.b.c", "d.e.f"]
