"""The training loop end to end on this CPU: the tiny model learns its toy task, a run resumes from its
checkpoint with the same model and optimizer state, PPO runs with its critic, and failures (a broken
reward, a crashing engine) end the run with a clear message and Ray shut down."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.helpers.hooks import HERE
from tests.helpers.paths import ROOT
from tests.helpers.runs import ONE_GPU, leftovers, rewards, train
from tests.helpers.stack import require_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def base_folder(tiny_base):
    require_module("torch")
    require_module("ray")
    return tiny_base


def assert_args_file_regenerates(checkpoint: Path) -> None:
    """The checkpoint keeps the run's args file beside its run record, and the file rebuilds itself."""
    args_file = checkpoint / "args.sh"
    assert (checkpoint / "run.json").is_file() and args_file.is_file()
    check = subprocess.run([sys.executable, "tools/generate_args.py", "--regenerate", str(args_file)], cwd=ROOT,
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "regenerates to the same arrays" in check.stderr


def test_the_tiny_model_learns_its_toy_task_through_the_launcher(base_folder):
    """The README's second main job: the launcher starts Ray, submits the run, and stops Ray."""
    from slime.utils.ports import free_ports

    ports = dict(zip(("RAY_PORT", "RAY_DASHBOARD_PORT", "RAY_AGENT_PORT", "RAY_CLIENT_PORT"), map(str, free_ports(4))))
    env = {**os.environ, "BASE_FOLDER": str(base_folder), "PYTHON": sys.executable,
           "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", **ports}
    save = base_folder / "launched"  # only the last rollout is saved
    result = subprocess.run(["bash", "scripts/run-tiny-cpu.sh", f"ckpt.save={save}", "ckpt.save_interval=60"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert_args_file_regenerates(save / "iter_0000059")
    # Engines are server processes behind SGLang's router on loopback, each with its own log.
    assert re.search(r"^slime: starting 2 torch engine\(s\); logs in /\S+ on each engine's host$", log, re.M), log[-4000:]
    assert re.search(r"^slime: SGLang router at http://127\.0\.0\.1:\d+ in front of 2 engine\(s\)$", log, re.M)
    # What the start-up spent its time on: the launcher's steps, then the trainer's summary.
    assert re.search(r"^launcher: starting a Ray head at 127\.0\.0\.1:\d+$", log, re.M), log[-4000:]
    assert re.search(r"^launcher: Ray is up at http://127\.0\.0\.1:\d+$", log, re.M), log[-4000:]
    assert re.search(r"^slime: ready to train [\d.]+ s after the process started: imports and connecting to Ray "
                     r"[\d.]+ s, placement [\d.]+ s, then engines [\d.]+ s and after them train actors [\d.]+ s "
                     r"\(data [\d.]+ s beside them\)$", log, re.M), log[-4000:]
    # Each rollout's time in all, beside its phases: what a rollout costs, overheads included.
    assert len(re.findall(r"^rollout \d+/60 .*\|  generate [\d.]+s  train [\d.]+s  (save [\d.]+s  )?sync [\d.]+s  "
                          r"\([\d.]+s in all\)$", log, re.M)) == 60, log[-4000:]
    # the tensor path, colocated: each train rank feeds the engine on its GPU slot, with exactly its weights
    assert "weights pushed by tensor" in log
    lags = [float(x) for x in re.findall(r"train_rollout_logprob_abs_diff ([\d.]+)", log)]
    assert len(lags) == 60 and max(lags) < 1e-4, lags
    history = rewards(log)
    assert len(history) == 60
    first, last = sum(history[:5]) / 5, sum(history[-5:]) / 5
    assert first < 0.2 and last >= first + 0.3, history


def test_every_weight_transport_serves_the_engines_the_same_weights(base_folder, tmp_path, training_ray):
    """The disk and a weight-update group (engines on their own GPU) give the same rollouts, seeded per
    request, and the engines' log-probs are the trainer's: each delivers exactly the weights training
    produced. (The tensor path, colocated, is the launcher's learning run above, checked the same way.)"""
    runs = {"disk": ["+perf.update_weight_transport=disk"],
            "distributed": ["cluster.colocate=false", "+cluster.rollout_num_gpus=1"]}
    histories = {}
    for name, overrides in runs.items():
        result = train(base_folder, ONE_GPU, f"ckpt.save={tmp_path / name}", "rollout.num_rollout=3", *overrides, ray=training_ray)
        assert result.returncode == 0, result.stdout[-3000:]
        assert f"weights pushed by {name}" in result.stdout
        # on policy: the engine's log-probs are the trainer's, rollout after rollout
        lags = [float(x) for x in re.findall(r"train_rollout_logprob_abs_diff ([\d.]+)", result.stdout)]
        assert len(lags) == 3 and max(lags) < 1e-4, lags
        histories[name] = rewards(result.stdout)
    assert len(histories["disk"]) == 3
    assert histories["disk"] == histories["distributed"], histories


def test_a_killed_run_resumes_after_its_last_checkpoint(base_folder, tmp_path, training_ray):
    save = tmp_path / "ckpt"
    process = train(base_folder, ONE_GPU, f"ckpt.save={save}", "ckpt.save_interval=2", wait=False, ray=training_ray)
    index = save / "latest_checkpointed_iteration.txt"
    deadline = time.time() + 300
    while not (index.exists() and int(index.read_text()) >= 3):
        assert process.poll() is None and time.time() < deadline, process.stdout.read()[-3000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    log = process.communicate(timeout=120)[0]
    saved = int(index.read_text())
    assert "stopped by SIGTERM" in log and rewards(log)[-1:]  # stopped mid-run, cleanly
    resumed = train(base_folder, ONE_GPU, f"ckpt.save={save}", "ckpt.save_interval=2", f"rollout.num_rollout={saved + 3}",
                    ray=training_ray)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"at rollout {saved}: model and optimizer loaded, continuing at rollout {saved + 1}" in resumed.stdout
    assert_args_file_regenerates(save / f"iter_{saved:07d}")  # train.py --config-name writes it too
    lines = re.findall(r"^rollout (\d+)/", resumed.stdout, re.M)
    assert lines == [str(n) for n in range(saved + 2, saved + 4)]


def test_ppo_with_a_critic_at_its_own_learning_rate(base_folder, tmp_path, training_ray):
    result = train(base_folder, ONE_GPU, f"ckpt.save={tmp_path / 'ppo'}", "rollout.num_rollout=6", config="run_tiny_cpu_ppo",
                   *["+eval.eval_interval=3", f"+eval.eval_prompt_data=[toy,{base_folder}/toy/eval.jsonl]"], ray=training_ray)
    assert result.returncode == 0, result.stdout[-3000:]
    assert len(re.findall(r"^slime: eval toy \d\.\d{4}$", result.stdout, re.M)) == 3  # before training, after 3 and 6
    assert "Critic            torch: TP 1 × PP 1 × CP 1 → DP 1; EP 1, expert TP 1; lr 0.01" in result.stdout
    assert len(re.findall(r"^rollout \d+/6 .*critic/loss", result.stdout, re.M)) == 6
    assert (tmp_path / "ppo" / "critic" / "iter_0000005" / "model.pt").exists()


def test_rollouts_saved_by_a_rollout_only_run_replay_in_a_train_only_run(base_folder, tmp_path, training_ray):
    from slime.config.overrides import override

    data = tmp_path / "rollouts" / "rollout_{rollout_id}.pt"
    generate = train(base_folder, ONE_GPU, f"ckpt.save={tmp_path / 'a'}", "rollout.num_rollout=2", "+misc.debug_rollout_only=true",
                     override("+misc.save_debug_rollout_data", str(data)), ray=training_ray)
    assert generate.returncode == 0, generate.stdout[-3000:]
    assert sorted(p.name for p in data.parent.iterdir()) == ["rollout_0.pt", "rollout_1.pt"]
    assert "actor/loss" not in generate.stdout
    replay = train(base_folder, ONE_GPU, f"ckpt.save={tmp_path / 'b'}", "rollout.num_rollout=2", "+misc.debug_train_only=true",
                   override("+misc.load_debug_rollout_data", str(data)), ray=training_ray)
    assert replay.returncode == 0, replay.stdout[-3000:]
    replayed = re.findall(r"^rollout \d/2\s+reward ([\d.]+).*actor/loss", replay.stdout, re.M)
    assert replayed == re.findall(r"^rollout \d/2\s+reward ([\d.]+)", generate.stdout, re.M)


def test_an_external_router_routes_the_run_and_forgets_its_engines_after(base_folder, tmp_path, training_ray):
    require_module("sglang_router")
    from slime.rollout.client import http_get
    from slime.engines.router import router_command
    from slime.utils.ports import free_ports

    port, metrics_port = free_ports(2)
    router = subprocess.Popen(router_command("127.0.0.1", port, [], metrics_port), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        result = train(base_folder, ONE_GPU, f"ckpt.save={tmp_path / 'x'}", "rollout.num_rollout=1",
                       "+misc.debug_rollout_only=true", "+rollout.sglang_router_ip=127.0.0.1",
                       f"+rollout.sglang_router_port={port}", ray=training_ray)
        assert result.returncode == 0, result.stdout[-3000:]
        assert f"routing through the external router at http://127.0.0.1:{port}" in result.stdout
        assert "127.0.0.1:" + str(port) + " (external)" in result.stdout
        assert re.search(r"^rollout 1/1\s+reward", result.stdout, re.M)
        status, body = http_get(f"http://127.0.0.1:{port}", "/workers", timeout=10)
        assert status == 200 and json.loads(body)["workers"] == []
    finally:
        router.terminate()
        router.wait(timeout=30)


def test_a_train_rank_failing_at_start_stops_the_engines_started_before_it(base_folder, tmp_path):
    """Colocated, the train ranks start once the engines are up: the ranks' error ends the run, and the engines
    are shut down with it."""
    checkpoint = tmp_path / "ckpt"
    (checkpoint / "iter_0000003").mkdir(parents=True)  # a checkpoint of rollout 3 without the actor's model
    (checkpoint / "latest_checkpointed_iteration.txt").write_text("3")
    mark = uuid.uuid4().hex
    result = train(base_folder, ONE_GPU, f"ckpt.save={checkpoint}", mark=mark)
    assert result.returncode == 1, result.stdout[-3000:]
    assert re.search(r"^train\.py: /\S+/iter_0000003/model\.pt: the checkpoint of rollout 3 has no actor$", result.stdout,
                     re.M), result.stdout[-3000:]
    assert "ray::" not in result.stdout and "\n    raise " not in result.stdout  # the message, not the actor's traceback
    assert "slime: starting 1 torch engine(s)" in result.stdout  # they did start, first
    assert leftovers(mark) == []


def test_a_broken_reward_stops_the_run_with_its_error_and_ray_down(base_folder, tmp_path):
    mark = uuid.uuid4().hex
    result = train(base_folder, ONE_GPU, f"ckpt.save={tmp_path / 'x'}", "~rollout.rm_type",
                   "+rollout.custom_rm_path=tests.helpers.training:broken_reward", mark=mark)
    assert result.returncode == 1
    assert "the reward function (tests.helpers.training:broken_reward) failed on every sample" in result.stdout
    assert "KeyError: 'answer'" in result.stdout
    assert leftovers(mark) == []


KILL_ENGINE_0 = "+rollout.custom_generate_function_path=tests.helpers.training:kill_engine_then_generate"
ENGINE_0_DIED = (r"rollout engine 0 \(http://127\.0\.0\.1:\d+ on host 127\.0\.0\.1; "
                 r"log /\S+/engine_0\.log\) died \(exit code -9\)")


def test_a_crashing_engine_stops_the_run_naming_it_and_its_log(base_folder, tmp_path):
    mark = uuid.uuid4().hex
    result = train(base_folder, f"ckpt.save={tmp_path / 'x'}", KILL_ENGINE_0, mark=mark)  # engine 0 of 2 is killed
    assert result.returncode == 1, result.stdout[-3000:]
    assert re.search(r"^train\.py: " + ENGINE_0_DIED, result.stdout, re.M), result.stdout[-3000:]
    assert "the last lines of its log:" in result.stdout
    assert leftovers(mark) == []


def test_an_engine_that_stops_answering_stops_the_run_naming_it(base_folder, tmp_path):
    mark = uuid.uuid4().hex
    result = train(base_folder, f"ckpt.save={tmp_path / 'x'}", "rollout.num_rollout=3", "+rollout.rollout_health_check_interval=1",
                   "+rollout.rollout_health_check_timeout=2",
                   "+rollout.custom_generate_function_path=tests.helpers.training:freeze_engine_then_generate", mark=mark)
    assert result.returncode == 1, result.stdout[-3000:]
    assert re.search(r"^train\.py: rollout engine 0 \(http://127\.0\.0\.1:\d+ on host 127\.0\.0\.1; log /\S+/engine_0\.log\) "
                     r"did not answer /health_generate within 2 s", result.stdout, re.M), result.stdout[-3000:]
    assert leftovers(mark) == []


def test_with_fault_tolerance_a_crashed_engine_is_restarted_and_the_run_finishes(base_folder, tmp_path):
    mark = uuid.uuid4().hex
    result = train(base_folder, f"ckpt.save={tmp_path / 'x'}", "rollout.num_rollout=3", KILL_ENGINE_0,
                   "+rollout.use_fault_tolerance=true", "+rollout.rollout_health_check_interval=1", mark=mark)
    assert result.returncode == 0, result.stdout[-3000:]
    assert re.search(ENGINE_0_DIED + r": restarting it \(--use-fault-tolerance\)", result.stdout), result.stdout[-3000:]
    assert re.search(r"rollout engine 0 is back at http://127\.0\.0\.1:\d+ with the current weights", result.stdout)
    assert len(re.findall(r"^rollout \d/3 ", result.stdout, re.M)) == 3
    assert leftovers(mark) == []


# -- the loop with every feature of upstream slime the tests name at once ---------------------------
@pytest.mark.slow
def test_the_tiny_run_trains_with_every_feature_at_once(tiny_base, tmp_path, training_ray):
    from tests.helpers.runs import ONE_GPU, train

    result = train(tiny_base, ONE_GPU, f"ckpt.save={tmp_path / 'ckpt'}", "rollout.num_rollout=2",
                   "grpo.advantage_estimator=cispo", "+grpo.use_rollout_logprobs=true", "grpo.kl_loss_coef=0.01",
                   "+grpo.ref_update_interval=1", f"+grpo.custom_advantage_function_path={HERE}.reward_per_token",
                   f"+rollout.custom_reward_post_process_path={HERE}.raw_and_shifted",
                   f"+rollout.rollout_sample_filter_path={HERE}.keep_even", ray=training_ray)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "rollout 1: the reference model is now the actor (--ref-update-interval)" in log
    assert "rollout 1: 32 of 64 samples left out of the loss (--rollout-sample-filter-path)" in log
