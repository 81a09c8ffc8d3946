"""The checkpoint paths follow the chosen model: each conf/model file names its checkpoints' folder
(run.model_dir), a primary config may name another for its own model, and choosing another model
on the command line never keeps the old model's paths silently."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from slime.arguments.parser import parse_args
from slime.config.compose import generate_config
from slime.config.generate import GenerationError
from slime.config.model_files import load_model_entries, model_argv
from slime.utils.checkout import CONF_DIR
from tests.helpers.bash import source_arrays
from tests.helpers.paths import ROOT

ENV = {"BASE_FOLDER": "/data"}
PATH_FLAGS = ("hf_checkpoint", "ref_load", "load", "save")


def _paths(args) -> dict:
    return {flag: getattr(args, flag) for flag in PATH_FLAGS}


def _model_args(model: str) -> dict:
    return vars(parse_args(model_argv(load_model_entries(CONF_DIR / "model" / f"{model}.yaml")), validate=False))


def _same_architecture(args, model: str) -> bool:
    wanted = _model_args(model)
    return all(getattr(args, key) == wanted[key] for key in ("num_layers", "hidden_size", "ffn_hidden_size"))


def test_every_model_file_names_its_checkpoint_folder_and_holds_only_flags_under_model():
    for path in sorted((CONF_DIR / "model").glob("*.yaml")):
        text = path.read_text()
        data = yaml.safe_load(text)
        assert text.startswith("# @package _global_\n"), path.name
        assert set(data) == {"run", "model"} and set(data["run"]) == {"model_dir", "model_type"}, path.name
        assert data["run"]["model_dir"], path.name
        # its checkpoints' HF model_type: one transformers knows, or one of the remote-code models
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

        assert data["run"]["model_type"] in {*CONFIG_MAPPING_NAMES, "kimi_k2", "mimo"}, path.name


@pytest.mark.parametrize("model", ["glm4.5-106B-A12B", "kimi-k2", "glm4.7-30B-A3B"])
def test_a_model_the_megatron_backend_cannot_map_fails_generation_naming_its_file(model):
    with pytest.raises(GenerationError) as err:
        generate_config("run_qwen3_4B", [f"model={model}"])
    assert any(m.startswith(f"conf/model/{model}.yaml: run.model_type=") and "has no HF ↔ megatron weight mapping"
               in m for m in err.value.messages), err.value.messages


def test_the_published_checkpoints_have_their_model_files_model_type():
    from tests.helpers.checkpoints import CHECKPOINTS, PUBLISHED

    for config, folder in PUBLISHED.items():
        model_type = yaml.safe_load((CHECKPOINTS / folder / "config.json").read_text())["model_type"]
        assert generate_config(config).explainer.config["run"]["model_type"] == model_type, config


def test_choosing_qwen3_8B_on_the_qwen3_4B_run_gives_qwen3_8B_paths():
    args = generate_config("run_qwen3_4B", ["model=qwen3-8B"]).namespace
    assert _paths(args) == {"hf_checkpoint": "${BASE_FOLDER}/Qwen3-8B", "ref_load": "${BASE_FOLDER}/Qwen3-8B_torch_dist",
                            "load": "${BASE_FOLDER}/Qwen3-8B_slime", "save": "${BASE_FOLDER}/Qwen3-8B_slime"}
    assert _same_architecture(args, "qwen3-8B")
    assert _paths(generate_config("run_qwen3_4B").namespace)["hf_checkpoint"] == "${BASE_FOLDER}/Qwen3-4B"


@pytest.mark.slow
def test_a_sweep_over_two_models_writes_two_consistent_files(tmp_path):
    sweep = tmp_path / "sweep"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "generate_args.py"), "--config-name", "run_qwen3_4B",
                             "--multirun", "model=qwen3-4B,qwen3-8B", f"hydra.sweep.dir={sweep}"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load((sweep / "manifest.yaml").read_text())
    seen = {}
    for job in manifest["jobs"]:
        arrays = source_arrays((sweep / job["args_file"]).read_text(), ENV)
        args = parse_args([t for name, values in arrays.items() if name.endswith("_ARGS") for t in values])
        model = job["overrides"][0].split("=", 1)[1]
        assert _same_architecture(args, model), job
        seen[model] = _paths(args)
    assert seen == {model: {"hf_checkpoint": f"/data/{folder}", "ref_load": f"/data/{folder}_torch_dist",
                            "load": f"/data/{folder}_slime", "save": f"/data/{folder}_slime"}
                    for model, folder in (("qwen3-4B", "Qwen3-4B"), ("qwen3-8B", "Qwen3-8B"))}


def test_a_primary_config_names_another_checkpoint_of_its_own_model():
    assert generate_config("run_deepseek_r1").namespace.hf_checkpoint == "${BASE_FOLDER}/DeepSeek-R1"
    assert generate_config("run_deepseek_r1", ["model=deepseek-v3"]).namespace.hf_checkpoint == \
        "${BASE_FOLDER}/DeepSeek-R1"


def test_another_model_under_a_primary_configs_own_checkpoint_is_refused_with_the_fix():
    with pytest.raises(GenerationError) as caught:
        generate_config("run_deepseek_r1", ["model=kimi-k2"])
    [message] = [m for m in caught.value.messages if "run.model_dir" in m]
    assert message.startswith("conf/run_deepseek_r1.yaml: run.model_dir=DeepSeek-R1: ")
    assert "model=kimi-k2" in message and "add run.model_dir=Kimi-K2-Instruct to the overrides" in message
    with pytest.raises(GenerationError) as fixed:
        generate_config("run_deepseek_r1", ["model=kimi-k2", "run.model_dir=Kimi-K2-Instruct"])
    # what is left is the megatron backend's own limit: it maps no kimi_k2 checkpoints yet
    [left] = fixed.value.messages
    assert left.startswith("conf/model/kimi-k2.yaml: run.model_type=kimi_k2: the megatron backend has no")


def test_the_tiny_runs_follow_their_model_too():
    args = generate_config("run_tiny_megatron", ["model=tiny-qwen3"]).namespace
    assert (args.hf_checkpoint, args.ref_load, args.save) == (
        "${BASE_FOLDER}/tiny-qwen3", "${BASE_FOLDER}/tiny-qwen3", "${BASE_FOLDER}/tiny-qwen3_megatron_slime")
