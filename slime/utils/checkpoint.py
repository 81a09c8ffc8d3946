"""Checkpoint layout, Megatron-LM's, shared by every train backend:

    <save>/latest_checkpointed_iteration.txt   the last rollout id saved ("release" for a converted one)
    <save>/iter_0000020/                       the actor after rollout 20: torch_dist files (megatron
                                               backend) or model.pt / optimizer.pt (torch backend),
                                               run.json: argv, resolved settings, data position,
                                               and args.sh: the args file the run was launched from
    <critic save>/iter_0000020/                the critic, in --critic-save (default <save>/critic)

``--load`` resumes at the rollout after the latest one saved. A save that fails (a full disk, most
often) leaves no partial ``iter_…`` folder and the index on the last complete one (``saving``).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from slime.utils.files import atomic_write

INDEX = "latest_checkpointed_iteration.txt"
RUN_RECORD = "run.json"
ARGS_FILE = "args.sh"


def iteration_dir(directory: str | Path, rollout_id: int) -> Path:
    return Path(directory) / f"iter_{rollout_id:07d}"


def latest_rollout_id(directory: str | Path | None) -> int | None:
    """The rollout id of the latest checkpoint under ``directory``; None without one (or for a release,
    which holds weights but no run)."""
    index = Path(directory) / INDEX if directory else None
    if index is None or not index.is_file():
        return None
    mark = index.read_text().strip()
    return int(mark) if mark.isdigit() else None


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def write_run_record(directory: str, rollout_id: int, argv: list[str], args: argparse.Namespace, extra: dict,
                     args_file: str | None = None) -> None:
    """run.json (and the run's args file, when known) beside the weights, then the index: a checkpoint
    counts only once it is complete."""
    record = {"rollout_id": rollout_id, "argv": argv,
              "args": {key: _jsonable(value) for key, value in sorted(vars(args).items())}, **extra}
    target = iteration_dir(directory, rollout_id)
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / RUN_RECORD, json.dumps(record, indent=1) + "\n")
    if args_file is not None:
        atomic_write(target / ARGS_FILE, args_file)
    atomic_write(Path(directory) / INDEX, f"{rollout_id}\n")


def read_run_record(directory: str, rollout_id: int) -> dict:
    return json.loads((iteration_dir(directory, rollout_id) / RUN_RECORD).read_text())


class CheckpointFailed(RuntimeError):
    """A save failed; the message says why (naming the device when it is full) and what was kept."""


# Free space under which a failed write is taken for a full disk even when the error does not say so
# (torch.save's zip writer reports ENOSPC as "basic_ios::clear: iostream error … unexpected pos").
NEARLY_FULL = 16 << 20


def mount_of(path: str | Path) -> tuple[str, str, str]:
    """(device, file system type, mount point) of the file system holding ``path``, from the kernel's
    mount table; the mount point alone where that table cannot be read."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    device = os.stat(path).st_dev
    wanted = f"{os.major(device)}:{os.minor(device)}"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as table:
            for line in table:
                fields = line.split()
                if fields[2] == wanted:
                    rest = fields[fields.index("-") + 1:]
                    mount_point = fields[4].encode().decode("unicode_escape")
                    return rest[1], rest[0], mount_point
    except (OSError, ValueError, IndexError):
        pass
    mount = path.resolve()
    while not os.path.ismount(mount):
        mount = mount.parent
    return "?", "?", str(mount)


def _errno_in(err: BaseException | None, seen: int = 0) -> bool:
    while err is not None and seen < 20:
        if getattr(err, "errno", None) == errno.ENOSPC or "No space left on device" in str(err):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def out_of_space(directory: str | Path, err: BaseException) -> bool:
    """Whether a failed save ran out of space: ENOSPC in the error, or the file system nearly full."""
    if _errno_in(err) or _errno_in(getattr(err, "cause", None)):  # a Ray task error carries the rank's
        return True
    try:
        usage = shutil.disk_usage(directory)
    except OSError:
        return False
    return usage.free < NEARLY_FULL


@contextmanager
def saving(directory: str, rollout_id: int, others: tuple[str, ...] = (),
           passed_on: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """A save of ``rollout_id`` into ``directory`` (and into ``others``: a critic's folder). Should it fail,
    or be stopped, the iteration folders it made are removed and each folder's index is put back to its
    last complete checkpoint; an error (but those of ``passed_on``) becomes CheckpointFailed, which says
    why, naming the device when it is out of space."""
    folders = list(dict.fromkeys([directory, *others]))
    before = {folder: _index_text(folder) for folder in folders}
    existed = {folder: iteration_dir(folder, rollout_id).exists() for folder in folders}
    try:
        yield
    except BaseException as err:
        for folder in folders:
            if not existed[folder]:
                shutil.rmtree(iteration_dir(folder, rollout_id), ignore_errors=True)
            _restore_index(folder, before[folder])
        if not isinstance(err, Exception) or isinstance(err, passed_on):
            raise
        raise CheckpointFailed(_failure(directory, rollout_id, before[directory], err)) from err


def _index_text(folder: str) -> str | None:
    try:
        return (Path(folder) / INDEX).read_text()
    except OSError:
        return None


def _restore_index(folder: str, text: str | None) -> None:
    index = Path(folder) / INDEX
    if _index_text(folder) == text:
        return
    try:
        if text is None:
            index.unlink(missing_ok=True)
        else:
            atomic_write(index, text)
    except OSError:
        index.unlink(missing_ok=True)  # a wrong index is worse than none: --load then starts from ref_load


def _failure(directory: str, rollout_id: int, index: str | None, err: BaseException) -> str:
    partial = iteration_dir(directory, rollout_id)
    kept = (f"{Path(directory) / INDEX} still names rollout {index.strip()}, the last complete checkpoint, which "
            "--load resumes from" if index else "no earlier checkpoint is there")
    cause = getattr(err, "cause", None) or err
    if out_of_space(directory, err):
        device, kind, mount = mount_of(directory)
        why = f"no space left on device {device} ({kind} mounted on {mount}): make room there, or save elsewhere"
    else:
        why = f"{type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''}"
    return (f"rollout {rollout_id}: saving the checkpoint into {directory} failed: {why}. The partial {partial.name} "
            f"was removed; {kept}")
