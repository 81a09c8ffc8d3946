"""The run log's TensorBoard and W&B outputs, written by the real libraries: the scalars of a run
read back with TensorBoard's own reader, and W&B in offline mode writing its run files (no network)."""

from __future__ import annotations

import math
import time

import pytest

from slime.arguments.parser import parse_args
from slime.utils.run_log import RunLog
from tests.helpers.command_lines import MINIMAL
from tests.helpers.stack import require_module

ROLLOUTS = [{"reward": 0.25, "actor/loss": 1.5, "kl": 0.0}, {"reward": 0.5, "actor/loss": 1.25, "kl": 0.01}]


def logged(tmp_path, *flags: str) -> RunLog:
    log = RunLog(parse_args([*MINIMAL, "--num-rollout", "2", *flags]))
    for rollout_id, metrics in enumerate(ROLLOUTS):
        with log.phase("generate"):
            pass
        log.rollout(rollout_id, dict(metrics))
    log.close()
    return log


def test_issue15_14_tensorboard_scalars_read_back_with_tensorboards_reader(tmp_path):
    require_module("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logged(tmp_path, "--use-tensorboard", "--tensorboard-dir", str(tmp_path / "tb"))
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert {"reward", "actor/loss", "kl", "time/generate"} <= set(events.Tags()["scalars"])
    for key in ("reward", "actor/loss"):
        read = [(e.step, e.value) for e in events.Scalars(key)]
        assert [step for step, _ in read] == [0, 1]
        assert all(math.isclose(value, row[key], rel_tol=1e-6) for (_, value), row in zip(read, ROLLOUTS))


@pytest.mark.slow
def test_issue15_14_wandb_offline_writes_its_run_files(tmp_path, monkeypatch):
    require_module("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    logged(tmp_path, "--use-wandb", "--wandb-mode", "offline", "--wandb-project", "tiny", "--wandb-dir", str(tmp_path))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, list((tmp_path / "wandb").iterdir())
    [records] = runs[0].glob("run-*.wandb")  # the run's log, what `wandb sync` uploads later
    # W&B's service writes it in 32 KiB blocks and may flush the last one just after finish() returns
    deadline = time.monotonic() + 30
    while b"time/generate" not in (data := records.read_bytes()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b"actor/loss" in data and b"time/generate" in data  # the logged keys are in its history records


@pytest.mark.slow
def test_wandb_logs_into_the_given_run_and_keeps_the_key_out_of_its_config(tmp_path, monkeypatch):
    """Upstream's --wandb-run-id and --wandb-team reach W&B; --wandb-key is for logging in, never logged."""
    require_module("wandb")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = parse_args([*MINIMAL, "--use-wandb", "--wandb-mode", "offline", "--wandb-dir", str(tmp_path),
                       "--wandb-project", "slime-test", "--wandb-run-id", "run12345", "--wandb-group", "g"])
    log = RunLog(args)
    try:
        assert log.wandb.run.id == "run12345" and log.wandb.run.group == "g"
        assert "wandb_key" not in log.wandb.run.config and log.wandb.run.config["lr"] == 1e-6
        log.rollout(0, {"reward": 0.5})
    finally:
        log.close()
    assert any(path.name.endswith("run12345") for path in (tmp_path / "wandb").iterdir())


def test_each_rollout_line_gives_its_time_in_all_from_the_mark(capsys):
    """Phases do not add up to a rollout (the calls between them, the reward): the line says the whole."""
    import re

    log = RunLog(parse_args([*MINIMAL, "--num-rollout", "2"]))
    log.rollout(0, {"reward": 0.5})  # before any mark: nothing to measure from
    log.mark()
    time.sleep(0.05)
    with log.phase("generate"):
        pass
    log.rollout(1, {"reward": 0.5})
    first, second = capsys.readouterr().out.splitlines()
    assert "in all" not in first
    match = re.search(r"\|  generate [\d.]+s  \(([\d.]+)s in all\)$", second)
    assert match and float(match.group(1)) >= 0.05, second
