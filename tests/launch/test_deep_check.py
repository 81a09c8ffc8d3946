"""The deep check (tools/check_config.py, slime.launch.deep_check): every primary config passes it, and
each class of mistake that only megatron-core, SGLang or the checkpoint catches — the generator's own
check passes them — is reported naming its config key and the file (or override) that set it, every
problem of a config at once.

The checkpoints are the published ``config.json`` files in tests/fixtures/checkpoints (no weights);
a broken one is a copy with fields changed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import warnings

import pytest

from slime.config.compose import generate_config, hydra_context, primary_configs
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

CHECKPOINTS = ROOT / "tests" / "fixtures" / "checkpoints"
ENV = {"BASE_FOLDER": str(CHECKPOINTS)}


@pytest.fixture(scope="module")
def deep_check():
    """``deep_check`` with megatron-core and SGLang imported once for the module, inside one Hydra context."""
    require_module("megatron.core")
    require_module("sglang")
    from slime.launch import deep_check as module

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # megatron's and SGLang's notices about kernels this machine lacks
        module.import_owners()
    with hydra_context():
        yield module


def _broken_checkpoint(tmp_path, folder: str, **changes) -> dict[str, str]:
    """A BASE_FOLDER whose ``folder`` holds the published config.json with ``changes``."""
    config = json.loads((CHECKPOINTS / folder / "config.json").read_text())
    assert set(changes) <= set(config), changes
    config.update(changes)
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "config.json").write_text(json.dumps(config))
    return {"BASE_FOLDER": str(tmp_path)}


def _light_check_passes(config: str, overrides: list[str]) -> None:
    generate_config(config, overrides)  # the generator's own check (the trainer's parser): no error


@pytest.mark.parametrize("config", primary_configs())
def test_every_primary_config_passes_the_deep_check(deep_check, config):
    report = deep_check.deep_check(config, environ=ENV)
    assert report.problems == [], "\n".join(report.problems)
    assert all("deprecated" in w for w in report.warnings), report.warnings  # no memory warning
    first = deep_check.render(report).splitlines()[0]
    assert re.fullmatch(rf"{re.escape(config)}: passes the deep check \(\d+\.\d s\)", first), first
    checked = " ".join(report.checked)
    on_gpus = "tiny" not in config
    assert ("megatron-core: " in checked) == (generate_config(config).namespace.train_backend == "megatron")
    assert ("SGLang: the server arguments" in checked) == on_gpus
    assert ("memory per GPU" in checked) == on_gpus
    if config.startswith(("run_qwen3_4B", "run_qwen3_30B_A3B")):  # the checkpoints at hand
        assert "checkpoint: the model flags against" in checked


def test_a_moe_setting_megatron_core_rejects(deep_check):
    overrides = ["model.moe_router_topk=1"]  # top-1 routing needs the softmax before the top-k
    _light_check_passes("run_qwen3_30B_A3B", overrides)
    problem, checkpoint = deep_check.deep_check("run_qwen3_30B_A3B", overrides, environ=ENV).problems
    assert checkpoint.startswith("the checkpoint's num_experts_per_tok is 8, the flags give 1 ")  # it says so too
    assert problem.startswith("megatron-core's TransformerConfig says: Please use --moe-router-pre-softmax when "
                              "topk is 1."), problem
    assert "conf/model/qwen3-30B-A3B.yaml: model.moe_router_score_function=softmax" in problem
    assert "override model.moe_router_topk=1" in problem


def test_a_nested_megatron_check_names_the_setting_that_led_to_it(deep_check):
    overrides = ["+model.moe_router_num_groups=6", "+model.moe_router_group_topk=2"]
    _light_check_passes("run_qwen3_30B_A3B", overrides)
    [problem] = deep_check.deep_check("run_qwen3_30B_A3B", overrides, environ=ENV).problems
    assert "num_moe_experts (128) should be divisible by moe_router_num_groups (6)" in problem
    assert "conf/model/qwen3-30B-A3B.yaml: model.num_experts=128" in problem
    assert "override +model.moe_router_num_groups=6" in problem


def test_a_head_dim_the_checkpoint_disagrees_with(deep_check, tmp_path):
    environ = _broken_checkpoint(tmp_path, "Qwen3-4B", head_dim=64)
    [problem] = deep_check.deep_check("run_qwen3_4B", environ=environ).problems
    assert problem.startswith(f"the checkpoint's head_dim is 64, the flags give 128 ({tmp_path}/Qwen3-4B/config.json)")
    assert "conf/model/qwen3-4B.yaml: model.kv_channels=128" in problem


def test_an_sglang_server_constraint(deep_check):
    overrides = ["+sglang.sglang_cuda_graph_config={decode:{max_batch:8}}"]  # slime's parser: any JSON object
    _light_check_passes("run_qwen3_4B", overrides)
    [problem] = deep_check.deep_check("run_qwen3_4B", overrides, environ=ENV).problems
    assert problem.startswith("SGLang's parser says: --cuda-graph-config['decode']: unknown key 'max_batch'"), problem
    assert "override +sglang.sglang_cuda_graph_config={decode:{max_batch:8}}" in problem


def test_a_config_json_that_disagrees_on_layers_and_rope_base(deep_check, tmp_path):
    environ = _broken_checkpoint(tmp_path, "Qwen3-4B", num_hidden_layers=40, rope_theta=10000.0)
    problems = deep_check.deep_check("run_qwen3_4B", environ=environ).problems
    config_json = f"{tmp_path}/Qwen3-4B/config.json"
    assert problems == [
        f"the checkpoint's num_hidden_layers is 40, the flags give 36 ({config_json}) "
        "[set by conf/model/qwen3-4B.yaml: model.num_layers=36]",
        f"the checkpoint's rope_parameters.rope_theta is 10000.0, the flags give 1000000.0 ({config_json}) "
        "[set by conf/model/qwen3-4B.yaml: model.rotary_base=1000000]"], problems


def test_every_problem_of_a_config_at_once(deep_check, tmp_path):
    overrides = ["model.moe_router_topk=1", "+sglang.sglang_cuda_graph_config={prefill:{bs:[1]},nope:{}}"]
    environ = _broken_checkpoint(tmp_path, "Qwen3-30B-A3B", num_hidden_layers=40, rope_theta=10000.0, head_dim=64,
                                 num_experts=64)
    report = deep_check.deep_check("run_qwen3_30B_A3B", overrides, environ=environ)
    found = {re.search(r"megatron-core|SGLang|num_hidden_layers|rope_theta|head_dim|num_experts_per_tok|num_experts",
                       p).group(0): p for p in report.problems}
    assert sorted(found) == ["SGLang", "head_dim", "megatron-core", "num_experts", "num_experts_per_tok",
                             "num_hidden_layers", "rope_theta"]
    assert len(report.problems) == 7, report.problems
    assert "model.moe_router_topk=1" in found["megatron-core"]
    assert "unknown phase 'nope'" in found["SGLang"]
    assert "conf/model/qwen3-30B-A3B.yaml: model.num_experts=128" in found["num_experts"]
    assert "conf/model/qwen3-30B-A3B.yaml: model.num_layers=48" in found["num_hidden_layers"]
    assert deep_check.render(report).splitlines()[0].startswith("run_qwen3_30B_A3B model.moe_router_topk=1 "
                                                                 "+sglang.sglang_cuda_graph_config=")
    assert ": 7 problems (" in deep_check.render(report).splitlines()[0]


def test_a_run_that_does_not_fit_in_gpu_memory_fails_naming_role_figure_and_knobs(deep_check):
    report = deep_check.deep_check("run_qwen3_4B", ["cluster.gpu_memory_gib=24"], environ=ENV)
    assert report.problems == [] and not report.ok and report.status == 1
    [over] = report.over_memory
    assert over.startswith("an actor GPU (shared with the engines) needs about 32.9 GiB, more than --gpu-memory-gib 24; "
                           "lower it with --max-tokens-per-gpu, "), over
    assert "--tensor-model-parallel-size" in over and "--recompute-granularity" not in over  # full recompute is on
    assert "conf/perf/tp2_dynamic.yaml: perf.max_tokens_per_gpu=9216" in over
    lines = deep_check.render(report).splitlines()
    assert re.fullmatch(r"run_qwen3_4B cluster.gpu_memory_gib=24: does not fit in GPU memory \(--allow-over-memory "
                        r"proceeds anyway\) \(\d+\.\d s\)", lines[0]), lines[0]
    assert lines[1] == f"  - over memory: {over}"


def test_allow_over_memory_proceeds_with_a_warning_but_never_passes(deep_check):
    report = deep_check.deep_check("run_qwen3_4B", ["cluster.gpu_memory_gib=24"], environ=ENV, allow_over_memory=True)
    assert report.ok and report.status == 0
    lines = deep_check.render(report).splitlines()
    assert re.fullmatch(r"run_qwen3_4B cluster.gpu_memory_gib=24: does not fit in GPU memory \(allowed by "
                        r"--allow-over-memory: exit status 0\) \(\d+\.\d s\)", lines[0]), lines[0]
    assert "passes" not in lines[0]
    assert lines[1].startswith("  warning: over memory (allowed): an actor GPU (shared with the engines) needs about")


def test_a_block_fp8_checkpoint_without_the_engines_quantization_is_a_warning(deep_check):
    """DeepSeek-R1's published config.json: SGLang serves its FP8 weights, so the estimate must count them so."""
    quiet = deep_check.deep_check("run_deepseek_r1", [], environ=ENV)  # --sglang-quantization fp8 in the config
    assert quiet.ok and all("deprecated" in w for w in quiet.warnings)
    assert any("block-wise FP8 weights" in c for c in quiet.checked)
    [warning] = [w for w in deep_check.deep_check("run_deepseek_r1", ["~sglang.sglang_quantization"],
                                                  environ=ENV).warnings if "deprecated" not in w]
    assert "DeepSeek-R1/config.json holds fp8 weights, which SGLang serves as they are: set --sglang-quantization fp8" \
        in warning


def test_a_config_problem_outranks_over_memory_in_the_exit_status(deep_check):
    report = deep_check.deep_check("run_qwen3_4B", ["cluster.gpu_memory_gib=24", "model.moe_router_topk=1"],
                                   environ=ENV)
    assert report.status == 2


def test_an_unreachable_checkpoint_is_said_not_checked(deep_check):
    report = deep_check.deep_check("run_qwen3_4B", environ={})
    assert report.problems == []
    assert any(n.startswith("checkpoint ${BASE_FOLDER}/Qwen3-4B: a shell variable it refers to is unset")
               for n in report.unchecked), report.unchecked


@pytest.mark.slow
def test_the_cli_checks_every_config_and_prints_the_time_of_each(tmp_path):
    require_module("megatron.core")
    require_module("sglang")
    shutil.copytree(CHECKPOINTS, tmp_path, dirs_exist_ok=True)
    result = subprocess.run([sys.executable, "tools/check_config.py", "--all"], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, "BASE_FOLDER": str(tmp_path)}, check=False)
    assert result.returncode == 0, result.stderr
    timed = re.findall(r"^(run_\S+): passes the deep check \((\d+\.\d) s\)$", result.stdout, re.M)
    assert [name for name, _ in timed] == primary_configs()
    assert re.search(rf"^{len(primary_configs())} configs checked in \d+\.\d s$", result.stdout, re.M)


@pytest.mark.slow
def test_the_cli_exits_1_when_a_gpu_is_over_its_memory_and_0_when_allowed():
    require_module("megatron.core")
    require_module("sglang")
    command = [sys.executable, "tools/check_config.py", "--config-name", "run_qwen3_4B", "cluster.gpu_memory_gib=24"]
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "does not fit in GPU memory" in refused.stderr and "  - over memory: an actor GPU" in refused.stderr
    allowed = subprocess.run([*command, "--allow-over-memory"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "warning: over memory (allowed)" in allowed.stdout


@pytest.mark.slow
def test_the_cli_exits_2_with_every_problem_on_stderr():
    require_module("megatron.core")
    require_module("sglang")
    result = subprocess.run([sys.executable, "tools/check_config.py", "--config-name", "run_qwen3_30B_A3B",
                             "model.moe_router_topk=1", "+sglang.sglang_cuda_graph_config={nope:{}}"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "run_qwen3_30B_A3B model.moe_router_topk=1 +sglang.sglang_cuda_graph_config={nope:{}}: 2 problems" \
        in result.stderr
    assert "Traceback" not in result.stderr
