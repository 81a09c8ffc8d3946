"""train.py --dry-run prints the launch plan and imports no heavy library; so does parsing."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers.command_lines import MOE_64_GPUS
from tests.helpers.paths import ROOT

HEAVY = ("torch", "ray", "megatron", "sglang", "transformers")


def _run(code: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, check=False)


def test_dry_run_prints_the_plan_of_a_64_gpu_moe_run(model_args):
    argv = [*model_args["qwen3-235B-A22B"], *MOE_64_GPUS]
    result = subprocess.run([sys.executable, "train.py", *argv], capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    assert "separate GPUs per role" in plan
    assert "actor 64, critic 0, rollout 64; total 128 on 16 node(s)" in plan
    assert "TP 4 × PP 4 × CP 2 → DP 2; EP 16, expert TP 1" in plan
    assert "2 SGLang engine(s) × 32 GPU(s), DP attention 4, EP 32" in plan  # the default rollout backend
    assert "32 prompts × 8 samples = 256 samples" in plan
    assert "4 step(s) per rollout × 64 samples; per data-parallel rank 32 samples per step" in plan
    assert "3,000 rollouts → 768,000 samples, 12,000 optimizer steps" in plan
    assert "--num-steps-per-rollout = 4 (samples per rollout / --global-batch-size)" in plan


def test_dry_run_imports_no_heavy_library(model_args):
    code = (
        "import sys, json, train\n"
        "code = train.main(sys.argv[1:])\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print(json.dumps([code, heavy]), file=sys.stderr)\n"
    )
    result = _run(code, *model_args["qwen3-235B-A22B"], *MOE_64_GPUS)
    assert json.loads(result.stderr.strip().splitlines()[-1]) == [0, []]


def test_parsing_a_200_token_argv_imports_no_heavy_library(model_args):
    graph_sizes = ["1", "2", "4", *map(str, range(8, 257, 8))]
    optimizer = "--optimizer adam --lr-decay-style constant --weight-decay 0.1 --adam-beta1 0.9 --adam-beta2 0.98".split()
    argv = [*model_args["deepseek-v3"], *MOE_64_GPUS, *optimizer, "--sglang-cuda-graph-bs", *graph_sizes]
    assert len(argv) >= 200
    code = (
        "import sys, json\n"
        "from slime.arguments.parser import parse_args\n"
        "parse_args(sys.argv[1:])\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))\n"
    )
    result = _run(code, *argv)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_bad_arguments_exit_2_with_every_problem():
    result = subprocess.run([sys.executable, "train.py", "--lr", "x", "--num-layer", "2"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "argument --lr: invalid float value: 'x'" in result.stderr and "did you mean --num-layers?" in result.stderr
    assert "--rollout-num-gpus is required unless --colocate" in result.stderr  # a bad type hides nothing else
