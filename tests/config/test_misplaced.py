"""Habits from bash launchers and upstream slime on a Hydra command line get the project's answer, not
Hydra's usage text: a trainer flag (``--lr 2e-6``) or a flag's bare key (``lr=2e-6``) is told the
override it meant (``optimizer.lr=2e-6``), a misspelled ``--config-name`` the closest primary config,
and ``--help`` lists the primary configs. (The launcher's side: tests/scripts/test_launchers.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from slime.config.compose import compose_config, primary_configs
from slime.config.misplaced import hints, split
from tests.helpers.generator import run_generator
from tests.helpers.paths import ROOT

ENV = {**os.environ, "BASE_FOLDER": "/data"}
FLAGS_HINT = "the trainer's flags go through Hydra overrides here (each flag is a key of its config group): write "


def refused(*args: str) -> str:
    result = run_generator("--config-name", "run_qwen3_4B", *args)
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert "usage:" not in result.stderr and "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize("typed, meant", [
    (["--lr", "2e-6"], "optimizer.lr=2e-6"),
    (["--lr=2e-6"], "optimizer.lr=2e-6"),
    (["--colocate"], "cluster.colocate=true"),
    (["--eval-prompt-data", "aime", "/data/aime.jsonl"], "eval.eval_prompt_data=[aime,/data/aime.jsonl]"),
    (["--use-tis"], "+grpo.use_tis=true"),  # not in the config: added beside the other algorithm flags
], ids=["value", "equals", "switch", "list", "absent"])
def test_a_trainer_flag_among_the_overrides_is_told_its_override(typed, meant):
    assert f"  - {' '.join(typed)}: {FLAGS_HINT}{meant}\n" in refused(*typed)


def test_every_misplaced_flag_is_named_at_once_and_the_real_overrides_still_apply():
    said = refused("optimizer.lr=3e-6", "--lr", "2e-6", "--colocate", "model=qwen3-8B")
    assert "2 problems" in said and f"--lr 2e-6: {FLAGS_HINT}optimizer.lr=2e-6" in said
    assert f"--colocate: {FLAGS_HINT}cluster.colocate=true" in said


@pytest.mark.parametrize("typed", ["lr=2e-6", "+lr=2e-6"])
def test_a_bare_flag_key_is_told_its_group(typed):
    assert (f"override {typed}: lr is not a top-level key but the key of --lr in the optimizer group: did you mean "
            "optimizer.lr=2e-6?") in refused(typed)


def test_real_overrides_are_never_taken_for_misplaced_flags():
    overrides = ["model=qwen3-8B", "+experiment=quick_test", "entry_point=train.py", "hydra.run.dir=/tmp/x",
                 "run.model_dir=x", "optimizer.lr=2e-6", "~wandb.use_wandb", "--config-name", "run_qwen3_4B",
                 "--cfg", "job", "-cd", "/tmp/conf", "--multirun"]
    assert split(overrides, {"model", "experiment", "cluster"}) == (overrides, [])


def test_the_hint_reads_the_composed_config():
    """The group comes from the config at hand, not from a table: where it has the key, that group; where
    it has not, the group holding the flag's neighbours in the parser (the batch sizes are in rollout)."""
    [lr] = split(["--lr", "2e-6"])[1]
    assert hints([lr], {"perf": {"lr": 5}}) == [f"--lr 2e-6: {FLAGS_HINT}perf.lr=2e-6"]
    assert hints([lr], {}) == [f"--lr 2e-6: {FLAGS_HINT}+misc.lr=2e-6"]
    from omegaconf import OmegaConf

    composed = OmegaConf.to_container(compose_config("run_qwen3_4B"), resolve=False)
    [micro] = split(["--micro-batch-size", "4"])[1]
    assert hints([micro], composed) == [f"--micro-batch-size 4: {FLAGS_HINT}+rollout.micro_batch_size=4"]


@pytest.mark.parametrize("typed, expected", [
    ("run_qwen3_4b", "did you mean run_qwen3_4B?"),
    ("run_qwen3_4B_pp", "did you mean run_qwen3_4B_ppo"),
    ("nothing_like_it", "the primary configs are " + ", ".join(primary_configs())),
])
def test_a_misspelled_config_name_gets_the_closest_primary_config(typed, expected):
    result = run_generator("--config-name", typed)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"generate_args: --config-name {typed}: there is no primary config {typed!r}: ")
    assert expected in result.stderr and "Config search path" not in result.stderr


def test_the_generators_help_lists_the_primary_configs():
    result = run_generator("--help")
    assert result.returncode == 0
    assert "== Primary configs ==" in result.stdout and ", ".join(primary_configs()) in result.stdout


def test_train_py_tells_a_flag_among_its_overrides_and_a_misspelled_config():
    def train(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, env=ENV, capture_output=True, text=True,
                              check=False)

    flagged = train("--config-name", "run_qwen3_4B", "--dry-run", "--lr", "2e-6")
    assert flagged.returncode == 2 and flagged.stdout == ""
    assert f"  - --lr 2e-6: {FLAGS_HINT}optimizer.lr=2e-6" in flagged.stderr and "--dry-run:" not in flagged.stderr
    misspelled = train("--config-name", "run_qwen3_4b", "--dry-run")
    assert misspelled.returncode == 2
    assert misspelled.stderr == ("train.py: --config-name run_qwen3_4b: there is no primary config 'run_qwen3_4b': "
                                 "did you mean run_qwen3_4B?\n")


def test_check_config_tells_a_misspelled_config_name():
    result = subprocess.run([sys.executable, "tools/check_config.py", "--config-name", "run_qwen3_4b"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "check_config: --config-name run_qwen3_4b: there is no primary config 'run_qwen3_4b': did you mean " \
           "run_qwen3_4B?" in result.stderr
