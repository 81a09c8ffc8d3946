"""The trainer's preflight (slime.launch.preflight): a run that would fail after Ray and its engines started
stops before anything is started, exit status 2, every problem in one message.

Each run here is ``train.py`` in a fresh interpreter under ``python -X importtime``: its import log shows
that Ray was never imported, so no Ray was started, connected to or left behind, whatever else runs on
the machine (other engineers' clusters do not count, nor does any process outside this one's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slime.launch.preflight import preflight
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

# Runs a script with some top-level packages made unimportable, as on a machine without them.
WITHOUT = """import importlib.abc, runpy, sys
hidden = set(sys.argv[1].split(",")) - {""}
class Hidden(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Hidden())
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def imported(import_log: str) -> set[str]:
    """The modules ``python -X importtime`` says it imported."""
    return {line.split("|")[2].strip() for line in import_log.splitlines() if line.startswith("import time:")
            and line.count("|") == 2} - {"package"}


def train(base: Path, *overrides: str, config: str = "run_tiny_cpu", without: str = "") -> tuple[int, str, set]:
    """train.py --config-name ``config``: (exit status, what it said on stderr, the modules it imported)."""
    env = {**os.environ, "BASE_FOLDER": str(base)}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", WITHOUT, without, "train.py", "--config-name",
                             config, *overrides], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    said = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    return result.returncode, said, imported(result.stderr)


def assert_stopped_before_anything_started(status: int, said: str, modules: set[str], count: int) -> list[str]:
    assert status == 2, said
    assert "Traceback" not in said
    assert not {m for m in modules if m == "ray" or m.startswith("ray.")}, "Ray was imported: it could have started"
    assert not {m for m in modules if m == "torch" or m.startswith("torch.")}
    head, *problems = said.strip().splitlines()
    assert head == f"train.py: the run cannot start ({count} problem{'s' if count != 1 else ''}); nothing was started:"
    assert len(problems) == count and all(line.startswith("  - ") for line in problems), said
    return [line[4:] for line in problems]


def test_the_import_log_shows_a_ray_import():
    """The check the tests below rely on can fail: an interpreter that imports Ray shows it."""
    require_module("ray")
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import ray"], capture_output=True, text=True,
                            check=False, timeout=120)
    assert "ray" in imported(result.stderr)


def test_a_wrong_base_folder_names_every_missing_input_at_once(tmp_path):
    nowhere = tmp_path / "nowhere"
    problems = assert_stopped_before_anything_started(*train(nowhere), count=2)
    assert problems[0].startswith(f"--hf-checkpoint, --ref-load {nowhere}/tiny-cpu: does not exist (the nearest "
                                  f"folder that exists is {tmp_path}) [set by conf/run_tiny_cpu.yaml: "
                                  "ckpt.hf_checkpoint=${BASE_FOLDER}/tiny-cpu")
    assert problems[1].startswith(f"--prompt-data {nowhere}/toy/train.jsonl: does not exist")
    assert not nowhere.exists(), "the probe of --save left its folders behind"


def test_an_unwritable_save_folder_is_named_and_nothing_is_left_behind(tiny_base, tmp_path):
    (tmp_path / "a-file").write_text("")
    problems = assert_stopped_before_anything_started(*train(tiny_base, f"ckpt.save={tmp_path}/a-file/ckpt"), count=1)
    assert problems == [f"--save {tmp_path}/a-file/ckpt: {tmp_path}/a-file is not a folder "
                        f"[set by override ckpt.save={tmp_path}/a-file/ckpt]"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_a_writable_save_folder_is_probed_and_left_as_it_was(tiny_base, tmp_path):
    save = tmp_path / "new" / "deeper"
    status, said, _ = train(tiny_base, f"ckpt.save={save}", "rollout.prompt_data=/nonexistent.jsonl")
    assert status == 2 and "--save" not in said and "--prompt-data /nonexistent.jsonl" in said
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("config", ["run_tiny_cpu", "run_tiny_megatron"])
def test_model_flags_that_disagree_with_the_checkpoints_config_json_stop_the_run(tiny_base, config):
    """Three layers on a two-layer checkpoint: the torch backend trained it silently, megatron died in an actor."""
    problems = assert_stopped_before_anything_started(*train(tiny_base, "model.num_layers=3", config=config), count=1)
    assert problems == [f"the checkpoint's num_hidden_layers is 2, the flags give 3 ({tiny_base}/tiny-cpu/config.json) "
                        "[set by override model.num_layers=3]"]


def test_a_missing_logging_package_stops_the_run_before_it_starts(tiny_base):
    problems = assert_stopped_before_anything_started(
        *train(tiny_base, "+wandb.use_tensorboard=true", without="tensorboard"), count=1)
    assert problems[0].startswith("--use-tensorboard needs the tensorboard package, which this Python")
    assert "pip install tensorboard" in problems[0] and problems[0].endswith("[set by override "
                                                                             "+wandb.use_tensorboard=true]")


def test_the_backends_packages_and_the_routers_are_asked_for_where_the_config_uses_them(tiny_base):
    problems = assert_stopped_before_anything_started(
        *train(tiny_base, config="run_tiny_megatron", without="megatron,sglang_router"), count=2)
    assert problems[0].startswith("--train-backend megatron needs the megatron.core package")
    assert problems[1].startswith("SGLang's router, which the trainer starts in front of the engines, needs the "
                                  "sglang_router package")
    # an external router: none is started here, so its package is not needed (a missing prompt file stops the run)
    problems = assert_stopped_before_anything_started(
        *train(tiny_base, "+sglang.sglang_router_ip=10.0.0.1", "+sglang.sglang_router_port=30000",
               "rollout.prompt_data=/nonexistent.jsonl", without="sglang_router"), count=1)
    assert problems[0].startswith("--prompt-data /nonexistent.jsonl: does not exist")


def test_every_problem_is_reported_in_one_message(tiny_base, tmp_path):
    (tmp_path / "a-file").write_text("")
    problems = assert_stopped_before_anything_started(*train(
        tiny_base, "model.num_layers=3", f"ckpt.save={tmp_path}/a-file/x", "rollout.prompt_data=/nonexistent.jsonl",
        "+wandb.use_tensorboard=true", without="tensorboard"), count=4)
    assert [p.split(" ")[0] for p in problems] == ["--prompt-data", "--save", "the", "--use-tensorboard"]


def test_a_generated_args_file_gets_the_same_check_naming_the_flags(tmp_path):
    """The launcher's way in: flags, no config, so the problems name the flags."""
    argv = ["--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "8", "--hf-checkpoint",
            str(tmp_path / "model"), "--prompt-data", str(tmp_path / "train.jsonl"), "--rollout-batch-size", "8",
            "--n-samples-per-prompt", "4", "--num-rollout", "10", "--lr", "1e-6", "--colocate",
            "--rollout-backend", "torch", "--train-backend", "torch", "--actor-num-gpus-per-node", "1",
            "--rollout-num-gpus-per-engine", "1"]
    result = subprocess.run([sys.executable, "-X", "importtime", "train.py", *argv], cwd=ROOT, capture_output=True,
                            text=True, check=False, timeout=120)
    said = "\n".join(line for line in result.stderr.splitlines() if not line.startswith("import time:"))
    problems = assert_stopped_before_anything_started(result.returncode, said, imported(result.stderr), count=2)
    assert problems == [f"--hf-checkpoint {tmp_path}/model: does not exist (the nearest folder that exists is "
                        f"{tmp_path})", f"--prompt-data {tmp_path}/train.jsonl: does not exist (the nearest folder "
                        f"that exists is {tmp_path})"]


def test_a_hub_id_is_told_to_be_downloaded_first(minimal):
    from slime.arguments.parser import parse_args

    args = parse_args([*minimal, "--hf-checkpoint", "Qwen/Qwen3-4B"])
    message = next(p.message for p in preflight(args) if p.flags == ("--hf-checkpoint",))
    assert "if Qwen/Qwen3-4B is a model hub id, download it first (huggingface-cli download Qwen/Qwen3-4B" in message


def test_the_eval_datasets_of_an_eval_config_are_checked(minimal, tmp_path):
    from slime.arguments.parser import parse_args

    (tmp_path / "eval.yaml").write_text(json.dumps({"datasets": [{"name": "aime", "path": str(tmp_path / "aime")}]}))
    args = parse_args([*minimal, "--eval-config", str(tmp_path / "eval.yaml"), "--eval-interval", "5"])
    messages = [p.message for p in preflight(args)]
    assert f"--eval-config {tmp_path}/aime (eval dataset aime): does not exist (the nearest folder that exists is " \
           f"{tmp_path})" in messages


def test_the_run_s_own_load_folder_may_be_missing_another_may_not(minimal, tmp_path):
    from slime.arguments.parser import parse_args

    own = parse_args([*minimal, "--load", str(tmp_path / "run"), "--save", str(tmp_path / "run")])
    assert not [p for p in preflight(own) if "--load" in p.flags]
    other = parse_args([*minimal, "--load", str(tmp_path / "elsewhere"), "--save", str(tmp_path / "run")])
    assert [p.message for p in preflight(other) if "--load" in p.flags] == [
        f"--load {tmp_path}/elsewhere: does not exist (the nearest folder that exists is {tmp_path})"]
