"""The evaluation datasets a command line names (slime.arguments.eval_datasets)."""

from __future__ import annotations

from slime.arguments.eval_datasets import eval_datasets
from slime.arguments.parser import parse_args
from slime.launch.plan import build_plan
from tests.helpers.command_lines import MINIMAL


def test_one_eval_path_alone_is_upstreams_legacy_aime_dataset():
    args = parse_args([*MINIMAL, "--eval-prompt-data", "/data/aime-2024.jsonl", "--eval-interval", "5"])
    assert eval_datasets(args) == [("aime", "/data/aime-2024.jsonl")]
    assert build_plan(args)["evaluation"]["datasets"] == ["aime"]
    pairs = parse_args([*MINIMAL, "--eval-prompt-data", "aime", "/a.jsonl", "gsm8k", "/g.jsonl"])
    assert eval_datasets(pairs) == [("aime", "/a.jsonl"), ("gsm8k", "/g.jsonl")]
