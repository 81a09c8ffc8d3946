"""The tiny megatron runs end to end on this CPU (two gloo ranks at tensor parallel 2, engines as server
processes behind SGLang's router): GRPO learns the several-token count task through its launcher, a
run killed after a save resumes at the next rollout — at tensor parallel 1 from a TP 2 checkpoint —
and PPO trains its critic through megatron too."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.runs import leftovers, rewards, train
from tests.helpers.stack import require_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_folder(tiny_models):
    require_module("megatron.core")
    require_module("ray")
    return tiny_models


def test_the_tiny_megatron_run_learns_the_count_task_through_its_launcher(base_folder):
    from slime.utils.ports import free_ports

    ports = dict(zip(("RAY_PORT", "RAY_DASHBOARD_PORT", "RAY_AGENT_PORT", "RAY_CLIENT_PORT"), map(str, free_ports(4))))
    env = {**os.environ, "BASE_FOLDER": str(base_folder), "PYTHON": sys.executable,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **ports}
    result = subprocess.run(["bash", "scripts/run-tiny-megatron.sh", "ckpt.save_interval=null"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=1500, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert re.search(r"^  Actor +megatron: TP 2 × PP 1 × CP 1 → DP 1;", log, re.M), log[-4000:]
    assert re.search(r"^slime: SGLang router at http://127\.0\.0\.1:\d+ in front of 2 engine\(s\)$", log, re.M)
    assert "weights pushed by tensor" in log  # each TP rank feeds the engine on its own GPU slot
    lags = [float(x) for x in re.findall(r"train_rollout_logprob_abs_diff ([\d.]+)", log)]
    assert len(lags) == 60 and max(lags) < 1e-4, lags  # both engines serve exactly the trained weights
    history = rewards(log)
    assert len(history) == 60
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert first < 0.15 and last >= first + 0.3, history


def test_a_killed_megatron_run_resumes_at_the_next_rollout_on_another_layout(base_folder, tmp_path, training_ray):
    save = tmp_path / "ckpt"
    process = train(base_folder, f"ckpt.save={save}", "ckpt.save_interval=2", config="run_tiny_megatron",
                    wait=False, ray=training_ray)
    index = save / "latest_checkpointed_iteration.txt"
    deadline = time.time() + 600
    while not (index.exists() and int(index.read_text()) >= 1):
        assert process.poll() is None and time.time() < deadline, process.stdout.read()[-3000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    log = process.communicate(timeout=180)[0]
    saved = int(index.read_text())
    assert "stopped by SIGTERM" in log, log[-3000:]
    assert (save / f"iter_{saved:07d}" / ".metadata").is_file()  # megatron's dist_checkpointing files
    mark = uuid.uuid4().hex
    resumed = train(base_folder, f"ckpt.save={save}", "ckpt.save_interval=2", f"rollout.num_rollout={saved + 3}",
                    "perf.tensor_model_parallel_size=1", config="run_tiny_megatron", timeout=900, mark=mark)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert re.search(r"^  Actor +megatron: TP 1 × PP 1 × CP 1 → DP 2;", resumed.stdout, re.M)
    assert f"at rollout {saved}: model and optimizer loaded, continuing at rollout {saved + 1}" in resumed.stdout
    lines = re.findall(r"^rollout (\d+)/", resumed.stdout, re.M)
    assert lines == [str(n) for n in range(saved + 2, saved + 4)]
    assert leftovers(mark) == []


def test_ppo_trains_its_critic_through_megatron(base_folder, tmp_path, training_ray):
    """Its weights reach the engines through the disk (the learning run above takes the tensor path), and
    exactly: the engines' log-probs are the trainer's."""
    result = train(base_folder, f"ckpt.save={tmp_path / 'ppo'}", "rollout.num_rollout=4", "ckpt.save_interval=4",
                   "+perf.update_weight_transport=disk", config="run_tiny_megatron_ppo", timeout=900, ray=training_ray)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "weights pushed by disk" in result.stdout
    lags = [float(x) for x in re.findall(r"train_rollout_logprob_abs_diff ([\d.]+)", result.stdout)]
    assert len(lags) == 4 and max(lags) < 1e-4, lags
    assert re.search(r"^  Critic +megatron: TP 2 × PP 1 × CP 1 → DP 1; EP 1, expert TP 2; lr 0\.01$", result.stdout, re.M)
    critic_losses = re.findall(r"^rollout \d+/4 .*critic/loss (-?[\d.]+)", result.stdout, re.M)
    assert len(critic_losses) == 4
    assert (tmp_path / "ppo" / "iter_0000003" / ".metadata").is_file()
    assert (tmp_path / "ppo" / "critic" / "iter_0000003" / ".metadata").is_file()
