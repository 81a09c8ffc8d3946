"""train_async.py, upstream slime's one-step-off-policy entry point: a config selects it (entry_point), the
args file carries it, the launcher submits it, the plan says so, the importer keeps it; the tiny async run
learns while each rollout comes from weights one update behind the trained ones, and its curves read back
from TensorBoard."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from slime.config.compose import generate_config
from slime.config.generate import GenerationError
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

ENV = {**os.environ, "BASE_FOLDER": "/data"}


def test_the_async_config_names_its_entry_point_in_the_args_file():
    from slime.config.argsfile import render_bash

    assert generate_config("run_tiny_async").entry_point == "train_async.py"
    assert "\nSLIME_ENTRY_POINT=train_async.py\nSLIME_ARGS_COMPLETE=1\n" in render_bash(generate_config("run_tiny_async"))
    assert "\nSLIME_ENTRY_POINT=train.py\n" in render_bash(generate_config("run_tiny_cpu"))


def test_colocated_engines_cannot_run_one_step_off_policy_named_by_file():
    with pytest.raises(GenerationError) as err:
        generate_config("run_tiny_async", ["cluster=1x2_colocate"])
    (message,) = err.value.messages
    assert message.startswith("train_async.py generates the next rollout while training on this one, so the engines "
                              "need GPUs of their own: drop --colocate")
    assert "[set by conf/cluster/1x2_colocate.yaml: cluster.colocate=True]" in message
    assert "[entry point: conf/run_tiny_async.yaml: entry_point=train_async.py]" in message


def test_an_unknown_entry_point_is_named():
    with pytest.raises(GenerationError, match=r"override \+entry_point=train2\.py: the trainer's entry points are "
                                              r"train\.py and train_async\.py, not 'train2\.py'"):
        generate_config("run_tiny_cpu", ["+entry_point=train2.py"])


def test_train_py_refuses_a_config_written_for_train_async_py():
    result = subprocess.run([sys.executable, "train.py", "--config-name", "run_tiny_async", "--dry-run"], cwd=ROOT,
                            env=ENV, capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert "run_tiny_async is written for train_async.py (its entry_point), not train.py: run python " \
           "train_async.py --config-name run_tiny_async" in result.stderr


def test_the_plan_and_the_launcher_run_train_async_py(tmp_path):
    plan = subprocess.run([sys.executable, "train_async.py", "--config-name", "run_tiny_async", "--dry-run"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, check=True).stdout
    assert re.search(r"^  Loop +train_async\.py: one step off policy", plan, re.M)
    launched = subprocess.run(["bash", "scripts/run-tiny-async.sh", "--dry-run"], cwd=ROOT,
                              env={**ENV, "PYTHON": sys.executable, "TMPDIR": str(tmp_path)}, capture_output=True,
                              text=True, check=True).stdout
    (submit,) = [line for line in launched.splitlines() if line.startswith("ray job submit")]
    assert " -- python3 train_async.py --actor-num-nodes 1 --actor-num-gpus-per-node 1 --rollout-num-gpus 1 " in submit
    assert re.search(r"^#   Loop +train_async\.py", launched, re.M)


def test_the_launcher_refuses_an_args_file_naming_another_script(tmp_path):
    from slime.config.argsfile import render_bash

    args_file = tmp_path / "args.sh"
    args_file.write_text(render_bash(generate_config("run_tiny_cpu")).replace(
        "SLIME_ENTRY_POINT=train.py", "SLIME_ENTRY_POINT=evil.py"))
    result = subprocess.run(["bash", "scripts/run-tiny-cpu.sh", "--dry-run"], cwd=ROOT, capture_output=True, text=True,
                            env={**ENV, "PYTHON": sys.executable, "ARGS_FILE": str(args_file)}, check=False)
    assert result.returncode == 1 and "ray job submit" not in result.stdout
    assert "names the entry point 'evil.py' (SLIME_ENTRY_POINT); the trainer's are train.py and train_async.py" \
        in result.stderr


def test_the_plan_of_a_command_line_checks_it_against_its_entry_point():
    from tests.helpers.command_lines import MINIMAL

    def plan(*entry):
        return subprocess.run([sys.executable, "-m", "slime.launch.plan", *entry, "--", *MINIMAL], cwd=ROOT,
                              capture_output=True, text=True, check=False)

    assert plan().returncode == 0 and "Loop         train.py: synchronous" in plan().stdout
    refused = plan("--entry-point", "train_async.py")
    assert refused.returncode == 2 and "drop --colocate" in refused.stderr


def test_an_imported_async_launcher_keeps_its_entry_point():
    from slime.importer.importer import ImportTarget, import_launcher

    result = import_launcher(ROOT / "tests" / "fixtures" / "launchers" / "run-imported-upstream-async.sh",
                             target=ImportTarget(ROOT / "tests" / "fixtures" / "imported"))
    config = next(text for path, text in result.files.items() if path.suffix == ".yaml")
    assert "\nentry_point: train_async.py\n" in config
    golden = next(text for path, text in result.files.items() if path.parent.name == "golden")
    assert "\nSLIME_ENTRY_POINT=train_async.py\n" in golden


def run_log_values(log: str, key: str) -> list[float]:
    return [float(x) for x in re.findall(rf"^rollout \d+/\d+ .*\b{key} ([\d.-]+)", log, re.M)]


@pytest.mark.slow
def test_the_tiny_async_run_learns_one_step_off_policy(tiny_base, tmp_path):
    """The engine's log-probs of a rollout equal the trainer's before its first update (diff 0) and lag
    one update behind after (they are the weights before the last push): the run is one step off policy,
    and it learns."""
    require_module("ray")
    from tests.helpers.runs import leftovers

    mark = "async-" + tmp_path.name
    env = {**os.environ, "BASE_FOLDER": str(tiny_base), "SLIME_TEST_RUN": mark}
    env.pop("RAY_ADDRESS", None)
    result = subprocess.run([sys.executable, "train_async.py", "--config-name", "run_tiny_async",
                             f"ckpt.save={tmp_path / 'ckpt'}", "ckpt.save_interval=null",
                             "+wandb.use_tensorboard=true", f"+wandb.tensorboard_dir={tmp_path / 'tb'}"], cwd=ROOT,
                            env=env, capture_output=True, text=True, timeout=600, check=False)
    log = result.stdout
    assert result.returncode == 0, log[-3000:]
    rewards, lag = run_log_values(log, "reward"), run_log_values(log, "train_rollout_logprob_abs_diff")
    assert len(rewards) == len(lag) == 60
    assert lag[0] < 1e-4 and min(lag[1:]) > 1e-3, lag
    assert re.search(r"^rollout 2/60 .*\|  wait [\d.]+s  generate [\d.]+s  train [\d.]+s  sync [\d.]+s", log, re.M)
    first, last = sum(rewards[:5]) / 5, sum(rewards[-5:]) / 5
    assert last >= first + 0.3, rewards
    assert leftovers(mark) == []
    # the run's curves, as TensorBoard reads them (issue 15, item 14): the logged values, rollout by rollout
    require_module("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    read = events.Scalars("reward")
    assert [e.step for e in read] == list(range(60))
    assert [round(e.value, 4) for e in read] == rewards
    assert {"train_rollout_logprob_abs_diff", "time/wait", "time/generate"} <= set(events.Tags()["scalars"])
