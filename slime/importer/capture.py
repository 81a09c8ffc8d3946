"""Run an existing launch script in a sandbox with every external command replaced, and capture
what it passes to ``train.py`` together with the bash arrays it built, as bash itself holds them.

The script runs under bash inside ``slime.importer.sandbox`` (new user, mount, PID, network, IPC
and UTS namespaces; a read-only file system but for scratch folders; no capabilities; nothing left
running afterwards). ``BASH_ENV`` points at a prelude that defines shell functions for the
commands a launcher uses (ray, ssh, pkill, nvidia-smi, sleep, python, …); the same commands are on
``PATH`` as recording stubs, and the stubs are bound over the real binaries, so even
``/usr/bin/python3`` reaches one. When the script reaches ``python3 train.py`` (directly or after
``ray job submit … --``), the prelude writes that argv and every array variable of the shell,
NUL-separated, into the one writable folder the sandbox shares. Variables the script reads but
does not set get placeholders that the importer turns back into shell references. Where no sandbox
can be built, the script is not run at all and the capture fails with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

FAKED = ("ray", "ssh", "scp", "pkill", "killall", "kill", "nvidia-smi", "sleep", "python", "python3", "pip", "pip3",
         "nohup", "docker", "srun", "sbatch", "huggingface-cli", "wandb")
PLACEHOLDER = "__slime_var_{}__"
_PLACEHOLDER = re.compile(r"__slime_var_([A-Za-z_][A-Za-z0-9_]*)__")
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(:?[-=])?")
_ASSIGNMENT = re.compile(r"^\s*(?:export\s+|local\s+|declare\s+(?:-\w+\s+)*)?([A-Za-z_][A-Za-z0-9_]*)\+?=", re.M)
_MISSING_FILE = re.compile(r": (/\S+): No such file or directory")
_BASH_OWN = {"BASH_SOURCE", "LINENO", "FUNCNAME", "RANDOM", "PWD", "OLDPWD", "IFS", "PIPESTATUS", "BASH_REMATCH",
             "SECONDS", "HOSTNAME", "UID", "EUID", "PPID", "BASHPID", "PATH", "SHELL", "TMPDIR"}

PRELUDE = r"""
__slime_capture() {
  local name count
  {
    printf '%s\0' ARGV "$#" "$@"
    for name in $(compgen -A arrayvar); do
      case "${name}" in BASH_*|FUNCNAME|PIPESTATUS|GROUPS|DIRSTACK|COMP_*|__slime*) continue ;; esac
      local -n __slime_values="${name}"
      printf '%s\0' ARRAY "${name}" "${#__slime_values[@]}" "${__slime_values[@]}"
      unset -n __slime_values
    done
  } >>"${SLIME_CAPTURE_FILE}"
}
__slime_python() {
  while (($#)); do
    if [[ "$1" == *train.py ]]; then
      shift
      __slime_capture "$@"
      return 0
    fi
    [[ "$1" == -* ]] || return 0
    shift
  done
  return 0
}
python3() { __slime_python "$@"; }
python() { __slime_python "$@"; }
ray() {
  while (($#)) && [[ "$1" != -- ]]; do shift; done
  (($# > 1)) || return 0
  shift
  case "$1" in python|python3|*/python|*/python3) shift; __slime_python "$@" ;; esac
  return 0
}
nvidia-smi() { return 0; }
source() {
  printf '%s\0' SOURCE "$1" >>"${SLIME_CAPTURE_FILE}"
  builtin source "$@"
}
.() { source "$@"; }
"""
# Commands replaced by functions that do nothing (ray, python and nvidia-smi are defined above).
_NO_OPS = [name for name in FAKED if name not in ("ray", "python", "python3", "nvidia-smi")]

STUB = """#!/bin/sh
# Stands in for {name} while a launcher is imported: records the call, runs nothing.
printf '%s\\0' STUB "$0" "$#" "$@" >>"$SLIME_CAPTURE_FILE"
exit 0
"""


class CaptureError(Exception):
    """The script could not be run to its train.py call; the message says why and what to do."""


@dataclass
class Capture:
    script: Path
    argv: list[str]  # what train.py received, with placeholders turned into ${NAME}
    arrays: dict[str, list[str]]  # every array variable at that moment, likewise
    sourced: list[Path] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)  # the names that became shell references


def _restore_references(token: str) -> str:
    return _PLACEHOLDER.sub(lambda m: "${" + m.group(1) + "}", token)


def referenced_unset_variables(script: Path, environ: dict[str, str]) -> list[str]:
    """Variables the script (and shell files beside it) read without setting them."""
    texts = [script.read_text()]
    texts += [p.read_text() for p in sorted(script.parent.rglob("*.sh")) if p != script]
    names: dict[str, None] = {}
    assigned = {name for text in texts for name in _ASSIGNMENT.findall(text)}
    for text in texts:
        for name, default in _REFERENCE.findall(text):
            # ${NAME:-default} needs no value: the script's own default applies.
            if default or name in assigned or name in _BASH_OWN or name in environ:
                continue
            names[name] = None
    return list(names)


SANDBOX = Path(__file__).with_name("sandbox.py")
UNSHARE = ["--user", "--map-root-user", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork",
           "--kill-child=SIGKILL"]


def _unshare_command() -> tuple[list[str] | None, str]:
    """The command that enters the sandbox's namespaces here, or None and why it cannot."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return None, "unshare (util-linux) is not on PATH"
    probe = subprocess.run([unshare, *UNSHARE, "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1] if probe.stderr.strip() else f"exit status {probe.returncode}"
        return None, f"new user, mount, PID and network namespaces cannot be made here ({reason})"
    return [unshare, *UNSHARE], ""


def sandbox_problem() -> str | None:
    """Why launchers cannot be imported here, or None where the sandbox can be built."""
    return _unshare_command()[1] or None


def _covers(stubs: Path) -> list[list[str]]:
    """[stub, real binary] for every faked command found on PATH or in the usual folders."""
    covers: dict[str, str] = {}
    for name in FAKED:
        for directory in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/bin", "/usr/local/bin"]:
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                covers.setdefault(str(candidate.resolve()), str(stubs / name))
    return [[stub, real] for real, stub in covers.items()]


def capture(script: Path, args: list[str] | None = None, values: dict[str, str] | None = None,
            timeout: float = 60) -> Capture:
    """Run ``script`` in the sandbox with fakes and return what it hands to train.py; CaptureError
    if it never does, or if no sandbox can be built here (then the script is not run at all)."""
    script = script.resolve()
    if not script.is_file():
        raise CaptureError(f"{script} does not exist")
    unshare, problem = _unshare_command()
    if unshare is None:
        raise CaptureError(_refusal(problem))
    environ = {"HOME": "/tmp/home", "TMPDIR": "/tmp", "LANG": "C.UTF-8", **(values or {})}
    variables = referenced_unset_variables(script, environ)
    with tempfile.TemporaryDirectory(prefix="slime-import-") as tmp:
        tmp_path = Path(tmp).resolve()
        stubs, out, root = tmp_path / "bin", tmp_path / "out", tmp_path / "root"
        for folder in (stubs, out, root):
            folder.mkdir()
        for name in FAKED:
            (stubs / name).write_text(STUB.format(name=name))
            (stubs / name).chmod(0o755)
        prelude = tmp_path / "prelude.sh"
        prelude.write_text(PRELUDE + "".join(f"{name}() {{ return 0; }}\n" for name in _NO_OPS))
        capture_file = out / "capture"
        capture_file.touch()
        env = {
            **environ,
            **{name: PLACEHOLDER.format(name) for name in variables},
            "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin",
            "BASH_ENV": str(prelude),
            "SLIME_CAPTURE_FILE": str(capture_file),
        }
        spec = {"root": str(root), "covers": _covers(stubs), "readable": [str(tmp_path), str(script.parent)],
                "writable": [str(out)], "command": ["bash", str(script), *(args or [])], "cwd": str(script.parent),
                "env": env}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        try:
            result = subprocess.run([*unshare, sys.executable, "-I", str(SANDBOX), str(tmp_path / "spec.json")],
                                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                                    check=False, start_new_session=True)
        except subprocess.TimeoutExpired:
            raise CaptureError(f"{script} did not finish within {timeout:.0f} s with its commands replaced") from None
        if not (out / "ready").exists():
            reasons = [line.removeprefix("slime-sandbox: ") for line in result.stderr.splitlines()
                       if line.startswith("slime-sandbox: ")]
            raise CaptureError(_refusal(reasons[-1] if reasons else result.stderr.strip() or
                                        f"the sandbox exited with status {result.returncode}"))
        records = capture_file.read_bytes().decode(errors="replace").split("\0")[:-1]
    return _parse(script, records, result, variables)


def _refusal(reason: str) -> str:
    return (f"the script was not run: the importer runs launchers only in a sandbox (new user, mount, PID and "
            f"network namespaces, a read-only file system), and none can be built here: {reason}. "
            "See docs/importing.md")


def _parse(script: Path, records: list[str], result: subprocess.CompletedProcess, variables: list[str]) -> Capture:
    fields = iter(records)
    argv, arrays, sourced, stub_argv = None, {}, [], None
    for kind in fields:
        if kind == "SOURCE":
            sourced.append(Path(next(fields)))
        elif kind == "ARGV":
            values = [next(fields) for _ in range(int(next(fields)))]
            if argv is None:
                argv, arrays = values, {}
        elif kind == "ARRAY":
            name = next(fields)
            values = [next(fields) for _ in range(int(next(fields)))]
            if argv is not None and name not in arrays:
                arrays[name] = values
        elif kind == "STUB":
            name = next(fields)
            values = [next(fields) for _ in range(int(next(fields)))]
            if stub_argv is None and name.endswith(("python", "python3")):
                stub_argv = _train_argv(values)
            elif stub_argv is None and name.endswith("ray") and "--" in values:
                rest = values[values.index("--") + 1:]
                if rest and rest[0].endswith(("python", "python3")):
                    stub_argv = _train_argv(rest[1:])
    if argv is None:
        argv = stub_argv
    if argv is None:
        missing = _MISSING_FILE.findall(result.stderr)
        if missing:
            raise CaptureError(f"it sources or runs {missing[0]}, which does not exist: import it from where "
                               "that file is, or create it (for a model file, the MODEL_ARGS array)")
        detail = "".join(f"\n    {line}" for line in result.stderr.strip().splitlines()[-3:])
        raise CaptureError(f"it never ran train.py (exit status {result.returncode}); the end of its output:{detail}"
                           if detail else f"it never ran train.py (exit status {result.returncode})")
    return Capture(
        script=script,
        argv=[_restore_references(t) for t in argv],
        arrays={name: [_restore_references(t) for t in values] for name, values in arrays.items()},
        sourced=[p if p.is_absolute() else (script.parent / p) for p in sourced],
        variables=[name for name in variables if any(PLACEHOLDER.format(name) in t for t in argv)],
    )


def _train_argv(argv: list[str]) -> list[str] | None:
    for index, arg in enumerate(argv):
        if arg.endswith("train.py"):
            return argv[index + 1:]
        if not arg.startswith("-"):
            return None
    return None
