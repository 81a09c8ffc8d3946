"""`generate_args.py -o PATH` as a shell user expects of `>`, but never half-written: regular files
replaced atomically through symlinks, keeping their mode (new ones get the umask's); pipes and
character devices written through; folders, missing folders and the config files it read refused.
Only FIFOs, symlinks, files and device nodes under a temporary folder are used, never /dev."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import threading

import pytest

from tests.helpers.paths import ROOT

CONFIG = ["--config-name", "run_tiny_cpu"]


def generate(*args: str, umask: int | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "generate_args.py"), *args], capture_output=True,
                          text=True, cwd=ROOT, check=False,
                          preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


@pytest.fixture(scope="module")
def expected() -> str:
    result = generate(*CONFIG)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_issue13_3_o_writes_through_a_pipe(tmp_path, expected):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = generate(*CONFIG, "-o", str(fifo))
    reader.join(timeout=60)
    assert result.returncode == 0, result.stderr
    assert received == [expected] and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_issue13_3_o_writes_through_a_link_to_stdout(tmp_path, expected):
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")  # what /dev/stdout is, without touching /dev
    result = generate(*CONFIG, "-o", str(link))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected and link.is_symlink()


@pytest.mark.slow
def test_issue13_3_o_replaces_the_file_a_symlink_names_and_keeps_the_link(tmp_path, expected):
    target = tmp_path / "real" / "args.sh"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "args.sh"
    link.symlink_to(target)
    dangling = tmp_path / "next.sh"
    dangling.symlink_to(tmp_path / "real" / "next.sh")
    assert generate(*CONFIG, "-o", str(link)).returncode == 0
    assert generate(*CONFIG, "-o", str(dangling)).returncode == 0
    assert link.is_symlink() and target.read_text() == expected
    assert dangling.is_symlink() and (tmp_path / "real" / "next.sh").read_text() == expected
    assert sorted(p.name for p in target.parent.iterdir()) == ["args.sh", "next.sh"]  # no temp file left


def test_issue13_3_o_writes_through_a_character_device(tmp_path):
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # the null device, made here
        node.write_text("")
    except OSError as err:
        pytest.skip(f"cannot make or open a device node in {tmp_path}: {err.strerror}")
    result = generate(*CONFIG, "-o", str(node))
    assert result.returncode == 0, result.stderr
    assert stat.S_ISCHR(os.lstat(node).st_mode), "the device node was replaced by a file"


@pytest.mark.slow
def test_issue13_3_o_keeps_an_existing_files_mode_and_gives_new_files_the_umasks(tmp_path):
    existing = tmp_path / "existing.sh"
    existing.write_text("old\n")
    existing.chmod(0o640)
    assert generate(*CONFIG, "-o", str(existing), umask=0o077).returncode == 0
    assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    for umask, mode in ((0o022, 0o644), (0o077, 0o600)):
        new = tmp_path / f"new-{umask:o}.sh"
        assert generate(*CONFIG, "-o", str(new), umask=umask).returncode == 0
        assert stat.S_IMODE(new.stat().st_mode) == mode


@pytest.mark.slow
def test_issue13_3_o_refuses_a_config_file_that_was_read(tmp_path):
    conf = tmp_path / "conf"
    (conf / "model").mkdir(parents=True)
    shutil.copy(ROOT / "conf" / "model" / "tiny.yaml", conf / "model" / "mytiny.yaml")
    (conf / "mine.yaml").write_text("defaults:\n  - run_tiny_cpu\n  - override model: mytiny\n  - _self_\n")
    before = {p: p.read_bytes() for p in conf.rglob("*.yaml")}
    for target in (conf / "mine.yaml", conf / "model" / "mytiny.yaml"):
        result = generate("-cd", str(conf), "--config-name", "mine", "-o", str(target))
        assert result.returncode == 2 and result.stdout == ""
        assert f"-o {target}: that is a config file this run read" in result.stderr
    assert {p: p.read_bytes() for p in conf.rglob("*.yaml")} == before


@pytest.mark.slow
def test_issue13_9_o_naming_a_missing_folder_or_a_folder_is_an_error(tmp_path):
    for target, message in ((tmp_path / "missing" / "x.sh", f"the folder {tmp_path / 'missing'} does not exist"),
                            (tmp_path, "is a folder; name a file in it")):
        result = generate(*CONFIG, "-o", str(target))
        assert result.returncode == 2 and result.stdout == "", result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_issue13_14_a_temp_file_left_by_a_killed_writer_is_removed_by_the_next(tmp_path, expected):
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".args.sh.{dead.pid}.k1ll3d.tmp"  # what SIGKILL during a write leaves
    stale.write_text("partial")
    live = tmp_path / f".args.sh.{os.getpid()}.wr1t1ng.tmp"  # a writer still running: not touched
    live.write_text("partial")
    other = tmp_path / ".notes.txt.1.x.tmp"
    other.write_text("not ours")
    assert generate(*CONFIG, "-o", str(tmp_path / "args.sh")).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["args.sh", live.name, other.name])
    assert (tmp_path / "args.sh").read_text() == expected
