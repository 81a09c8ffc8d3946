"""Published checkpoints' config.json files the tests compare the model flags with."""

from __future__ import annotations

from tests.helpers.paths import ROOT

# config.json of published checkpoints (tests/fixtures/checkpoints/), and the primary configs that train them
CHECKPOINTS = ROOT / "tests" / "fixtures" / "checkpoints"
PUBLISHED = {"run_qwen3_4B": "Qwen3-4B", "run_qwen3_30B_A3B": "Qwen3-30B-A3B", "run_deepseek_r1": "DeepSeek-R1"}
