"""Run an existing launch script with every external command replaced, and capture what it passes
to ``train.py`` together with the bash arrays it built, as bash itself holds them.

The script runs under bash with ``BASH_ENV`` pointing at a prelude that defines shell functions
for the commands a launcher uses (ray, ssh, pkill, nvidia-smi, sleep, python, …), so nothing is
started or killed; the same commands are also on ``PATH`` as recording stubs for scripts that
call them by path or ``exec`` them, and — where the machine allows new mount and PID namespaces (``unshare``) — bound
over the real binaries, so even ``/usr/bin/python3`` reaches a stub. When the script reaches ``python3 train.py`` (directly or
after ``ray job submit … --``), the prelude writes that argv and every array variable of the
shell, NUL-separated. Variables the script reads but does not set get placeholders that the importer
turns back into shell references.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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


ISOLATE = """set -u
# Inside new mount and PID namespaces: put the recording stubs over the faked commands' real files,
# so a script that calls /usr/bin/python3 by path reaches a stub too; then run the script.
while [ "$1" != -- ]; do
  mount --bind "$1" "$2" 2>/dev/null || true
  shift 2
done
shift
exec "$@"
"""


_NAMESPACES = (["unshare", "--mount", "--pid", "--fork", "--mount-proc"],
               ["unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc"])


def _namespace_prefix() -> list[str] | None:
    """The first way of entering new mount and PID namespaces that works here, if any."""
    if shutil.which("unshare") is None:
        return None
    return next((prefix for prefix in _NAMESPACES
                 if subprocess.run([*prefix, "true"], capture_output=True, check=False).returncode == 0), None)


def _isolation(stubs: Path, isolate_script: Path) -> list[str]:
    """A prefix running the script in its own PID and mount namespaces, with the real binaries of
    the faked commands covered by stubs; empty where the machine allows no namespaces."""
    prefix = _namespace_prefix()
    if prefix is None:
        return []
    covers = []
    for name in FAKED:
        for directory in os.environ.get("PATH", "").split(os.pathsep) + ["/usr/bin", "/bin", "/usr/local/bin"]:
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                covers += [str(stubs / name), str(candidate.resolve())]
    return [*prefix, "sh", str(isolate_script), *covers, "--"]


def isolation_available() -> bool:
    """Whether scripts run in their own namespaces here (so absolute paths reach stubs too)."""
    return _namespace_prefix() is not None


def capture(script: Path, args: list[str] | None = None, values: dict[str, str] | None = None,
            timeout: float = 60) -> Capture:
    """Run ``script`` with fakes and return what it hands to train.py; CaptureError if it never does."""
    script = script.resolve()
    if not script.is_file():
        raise CaptureError(f"{script} does not exist")
    environ = {"HOME": "/nonexistent-home", "LANG": "C.UTF-8", **(values or {})}
    variables = referenced_unset_variables(script, environ)
    with tempfile.TemporaryDirectory(prefix="slime-import-") as tmp:
        tmp_path = Path(tmp)
        stubs = tmp_path / "bin"
        stubs.mkdir()
        for name in FAKED:
            (stubs / name).write_text(STUB.format(name=name))
            (stubs / name).chmod(0o755)
        prelude = tmp_path / "prelude.sh"
        prelude.write_text(PRELUDE + "".join(f"{name}() {{ return 0; }}\n" for name in _NO_OPS))
        capture_file = tmp_path / "capture"
        capture_file.touch()
        isolate_script = tmp_path / "isolate.sh"
        isolate_script.write_text(ISOLATE)
        env = {
            **environ,
            **{name: PLACEHOLDER.format(name) for name in variables},
            "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin",
            "BASH_ENV": str(prelude),
            "SLIME_CAPTURE_FILE": str(capture_file),
        }
        try:
            prefix = _isolation(stubs, isolate_script)
            result = subprocess.run([*prefix, "bash", str(script), *(args or [])], env=env, cwd=script.parent,
                                    capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise CaptureError(f"{script} did not finish within {timeout:.0f} s with its commands replaced") from None
        records = capture_file.read_bytes().decode().split("\0")[:-1]
    return _parse(script, records, result, variables)


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
