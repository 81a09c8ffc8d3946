"""Issue 20, item 8: a disk that fills up during a save names the device and "no space left", leaves no
partial iter_… folder, and keeps the index on the last complete checkpoint, which a run resumes from.
The full disk is a small tmpfs mounted under the test's temporary folder."""

from __future__ import annotations

import argparse
import subprocess

import pytest
import torch

from slime.utils.checkpoint import INDEX, CheckpointFailed, iteration_dir, saving, write_run_record


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MiB tmpfs: room for one checkpoint of the tiny model (0.9 MB), not for two."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(folder)], capture_output=True,
                             text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _save(folder, rollout_id: int, numbers: int) -> None:
    with saving(str(folder), rollout_id):
        iteration_dir(folder, rollout_id).mkdir(parents=True)
        torch.save(torch.zeros(numbers), iteration_dir(folder, rollout_id) / "model.pt")
        write_run_record(str(folder), rollout_id, [], argparse.Namespace(lr=1e-6), {})


def test_issue20_8_disk_full_during_a_save_names_the_device_and_keeps_the_last_complete_checkpoint(small_disk):
    _save(small_disk, 0, 50_000)
    with pytest.raises(CheckpointFailed) as failed:
        _save(small_disk, 1, 1_000_000)  # 4 MB into what is left of 1.5 MiB
    message = str(failed.value)
    assert f"no space left on device tmpfs (tmpfs mounted on {small_disk})" in message
    assert "The partial iter_0000001 was removed" in message and "still names rollout 0" in message
    assert "basic_ios" not in message and "unexpected pos" not in message
    assert sorted(p.name for p in small_disk.iterdir()) == ["iter_0000000", INDEX]
    assert (small_disk / INDEX).read_text() == "0\n"


def test_issue20_8_a_save_failing_after_the_index_moved_puts_the_index_back(tmp_path):
    write_run_record(str(tmp_path), 0, [], argparse.Namespace(), {})
    with pytest.raises(CheckpointFailed, match="OSError: the disk went away"):
        with saving(str(tmp_path), 1):
            (tmp_path / INDEX).write_text("1\n")  # the megatron backend writes its tracker before run.json
            raise OSError("the disk went away")
    assert (tmp_path / INDEX).read_text() == "0\n" and not iteration_dir(tmp_path, 1).exists()


@pytest.mark.slow
def test_issue20_8_a_run_whose_disk_fills_stops_cleanly_and_resumes_from_the_last_complete_save(tiny_base, tmp_path,
                                                                                             small_disk):
    from tests.helpers.runs import train_one_rank

    full = train_one_rank(tiny_base, f"ckpt.save={small_disk}", "rollout.num_rollout=2", "ckpt.save_interval=1")
    assert full.returncode == 1, full.stdout[-3000:]
    assert f"no space left on device tmpfs (tmpfs mounted on {small_disk})" in full.stdout
    assert "Traceback" not in full.stdout and "basic_ios" not in full.stdout
    assert sorted(p.name for p in small_disk.iterdir()) == ["iter_0000000", INDEX]
    resumed = train_one_rank(tiny_base, f"ckpt.load={small_disk}", f"ckpt.save={tmp_path / 'more'}",
                             "rollout.num_rollout=2")
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert f"resumed from {small_disk} at rollout 0" in resumed.stdout
