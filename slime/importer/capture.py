"""Run an existing launch script in a sandbox with every external command replaced, and capture
what it passes to ``train.py`` together with the bash arrays it built, as bash itself holds them.

The script runs under bash inside ``slime.importer.sandbox`` (new user, mount, PID, network, IPC
and UTS namespaces; the real file system, read-only, but for a scratch folder of its own; no
capabilities; nothing left running afterwards). ``BASH_ENV`` points at a prelude that defines shell functions for the
commands a launcher uses (ray, ssh, pkill, nvidia-smi, sleep, python, …); the same commands are on
``PATH`` as recording stubs, and the stubs are bound over the real binaries, so even
``/usr/bin/python3`` reaches one. When the script reaches ``python3 train.py`` (directly or after
``ray job submit … --``), the prelude writes that argv and every array variable of the shell,
NUL-separated, into a file of the sandbox's scratch folder, which the sandbox copies out when the
script ends. Where no sandbox can be built, the
script is not run at all and the capture fails with the reason.

Every variable the script and the files it sources refer to (``$NAME`` or ``${NAME…}``) enters the
script set to a placeholder, unless bash sets it or the caller gives its value: what the script
assigns before reading replaces its placeholder, so the placeholders left in the argv are exactly the
variables it reads without setting, and they turn back into shell references. A test such as
``[ -z "$MASTER_ADDR" ] && exit 1`` thus passes. A variable the script gives one literal default
(``${BASE_DIR:-/data}``, ``: "${BASE_DIR:=/data}"``) comes back as ``${BASE_DIR:-/data}``. A variable
it computes from a command (``NUM_GPUS=${NUM_GPUS:-$(nvidia-smi -L | wc -l)}``, ``X=$(…)`` in an
``if [ -z "$X" ]``) enters as a number, so numeric tests see a value given, and comes back with the
value the script gives it when unset as its default (``${NUM_GPUS:-8}``, with a note naming the
command and the stand-ins it ran). Files
sourced that refer to variables not seen before make the script run once more with those too.

What the script leaves in the capture folder is read as hostile input: the capture file is opened
without following a link and without blocking, only as a regular file, up to ``CAPTURE_LIMIT`` bytes
and within ``READ_SECONDS`` (a FIFO, a link to ``/dev/zero`` or a huge file is an error, not a hang);
the files it sources are read with the same bounds; of its output only the start and the end of
stderr are kept (``OUTPUT_KEPT`` bytes each). A variable assigned from a command substitution
(``SECRET=$(cat …)``) whose value reaches the argv is listed (``Capture.substituted``): its value
would be written into the config and the golden file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from slime.config.shell import DEFAULT_TEXT, reference, shell_refs
from slime.arguments.entry_points import DEFAULT_ENTRY_POINT, ENTRY_POINTS

FAKED = ("ray", "ssh", "scp", "pkill", "killall", "kill", "nvidia-smi", "sleep", "python", "python3", "pip", "pip3",
         "nohup", "docker", "srun", "sbatch", "huggingface-cli", "wandb")
PLACEHOLDER = "__slime_var_{}__"
# A variable the script computes from a command enters as a number, so that its numeric tests
# ([ "$NUM_GPUS" -gt 0 ] || NUM_GPUS=8) see a value given, as a user's export would be.
NUMERIC_PLACEHOLDER = 860461000000
_NUMERIC_PLACEHOLDER = re.compile(r"(?<![0-9])860461([0-9]{6})(?![0-9])")
CAPTURE_FILE = "capture"  # in the sandbox's scratch folder, copied out when the script ends
_PLACEHOLDER = re.compile(r"__slime_var_([A-Za-z_][A-Za-z0-9_]*)__")
_REFERENCE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_ARRAY_REFERENCE = re.compile(r"\$\{[#!]?([A-Za-z_][A-Za-z0-9_]*)\[[@*]\]")  # ${A[@]}, ${A[*]}, ${#A[@]}
_EMPTY_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?-\}")
_DEFAULT = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?[-=]")
_MISSING_FILE = re.compile(r": (/\S+): No such file or directory")
_BASH_OWN = {"BASH_SOURCE", "LINENO", "FUNCNAME", "RANDOM", "PWD", "OLDPWD", "IFS", "PIPESTATUS", "BASH_REMATCH",
             "SECONDS", "HOSTNAME", "UID", "EUID", "PPID", "BASHPID", "PATH", "SHELL", "TMPDIR"}
_RERUNS = 3  # runs that may each find sourced files with variables not seen before
CAPTURE_LIMIT = 64 << 20  # what the sandbox's scratch folder can hold
SOURCED_LIMIT = 16 << 20  # a sourced file is a script; anything larger is not read
READ_SECONDS = 10.0
OUTPUT_KEPT = 256 << 10  # of the sandbox's stderr, this much of its start and of its end
# An assignment from a command substitution: NAME=$(…), NAME="$(…)", NAME=`…`, after export/local/….
_SUBSTITUTED = re.compile(r"(?:^|[\s;&|(])(?:(?:export|local|readonly|declare|typeset)\s+(?:-\w+\s+)*)?"
                          r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=[\"']?(?P<command>\$\((?!\()|`)")

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
    for name in ${SLIME_CAPTURE_SUBSTITUTED:-}; do
      [[ -v "${name}" ]] && printf '%s\0' SCALAR "${name}" "${!name}"
    done
  } >>"${SLIME_CAPTURE_FILE}"
}
__slime_python() {
  while (($#)); do
    if [[ "$1" == *train.py || "$1" == *train_async.py ]]; then
      printf '%s\0' ENTRY "${1##*/}" >>"${SLIME_CAPTURE_FILE}"
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
if [[ -n "${SLIME_CAPTURE_ALLOW_UNSET:-}" ]]; then
  # The run that tells defaults from bare reads of unset variables: those reads must not stop it.
  set() { builtin set "$@"; builtin set +u; }
fi
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
    argv: list[str]  # what train.py received, with placeholders turned into ${NAME} (or ${NAME:-default})
    arrays: dict[str, list[str]]  # every array variable at that moment, likewise
    sourced: list[Path] = field(default_factory=list)
    variables: list[str] = field(default_factory=list)  # the names that became shell references
    defaults: dict[str, str] = field(default_factory=dict)  # name → the script's literal default
    notes: list[str] = field(default_factory=list)
    entry_point: str = DEFAULT_ENTRY_POINT  # the trainer script it runs: train.py or train_async.py
    # name → (the command substitution it was assigned, its value), for those whose value is in the argv
    substituted: dict[str, tuple[str, str]] = field(default_factory=dict)


def computed_variables(texts: list[str]) -> dict[str, str]:
    """{name: how the texts compute it} for variables assigned from a command substitution, ``NAME=$(…)``,
    or given one as their default, ``NAME=${NAME:-$(…)}``."""
    found = substitutions(texts)
    for text in texts:
        for match in _DEFAULT.finditer(text):
            word = _default_text(text, match.end())
            if word and ("$(" in word or "`" in word):
                found.setdefault(match.group(1), text[match.start():match.end() + len(word) + 1])
    return found


def substitutions(texts: list[str]) -> dict[str, str]:
    """{name: the command substitution it is assigned} for every ``NAME=$(…)`` / ``NAME=`…``` of the texts."""
    found = {}
    for text in texts:
        for match in _SUBSTITUTED.finditer(text):
            start = match.start("command")
            found.setdefault(match["name"], text[start:_word_end(text, start)].strip()[:120])
    return found


def _word_end(text: str, start: int) -> int:
    """Where the shell word that starts at ``start`` ends: at a blank, a newline, ``;``, ``&`` or ``|`` outside
    quotes, ``$(…)``, ``${…}`` and backquotes (so ``X=$(pwd)/out; fi`` is ``$(pwd)/out``)."""
    end = _scan_to(text, start, " \t\n;&|)}")
    return len(text) if end is None else end


def _scan_to(text: str, start: int, stops: str) -> int | None:
    """The index of the first character of ``stops`` from ``start`` on that is outside quotes, backquotes,
    ``$(…)`` and ``${…}``; None if there is none."""
    depth, quote, i = 0, None, start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = None
            elif ch == "\\" and quote != "'":
                i += 1
        elif ch == "\\":
            i += 1
        elif ch in "'\"`":
            quote = ch
        elif text.startswith(("$(", "${"), i):
            depth, i = depth + 1, i + 1
        elif depth == 0 and ch in stops:
            return i
        elif ch in ")}" and depth:
            depth -= 1
        i += 1
    return None


def read_bounded(path: Path, limit: int, seconds: float = READ_SECONDS) -> bytes:
    """The bytes of a file a sandboxed script could have replaced: opened without following a symbolic
    link or blocking (a FIFO), only a regular file, at most ``limit`` bytes, within ``seconds``;
    CaptureError otherwise."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        why = "it is a symbolic link" if err.errno == 40 else (err.strerror or str(err))  # ELOOP
        raise CaptureError(f"{path} cannot be read: {why}; the importer reads only a regular file there") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            kind = "a FIFO" if stat.S_ISFIFO(info.st_mode) else "not a regular file"
            raise CaptureError(f"{path} is {kind}; the importer reads only a regular file there")
        if info.st_size > limit:
            raise CaptureError(f"{path} holds {info.st_size:,} bytes, more than the {limit:,} the importer reads")
        deadline, chunks, size = time.monotonic() + seconds, [], 0
        while True:
            if time.monotonic() > deadline:
                raise CaptureError(f"{path} was not read within {seconds:g} s")
            chunk = os.read(descriptor, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise CaptureError(f"{path} holds more than the {limit:,} bytes the importer reads")
            chunks.append(chunk)
    finally:
        os.close(descriptor)


def _text_of(path: Path) -> str | None:
    """A sourced file's text, read within the bounds; None when it is not a readable regular file."""
    try:
        return read_bounded(path, SOURCED_LIMIT).decode(errors="replace")
    except CaptureError:
        return None


class _Kept:
    """What a pipe carries, the first and the last ``OUTPUT_KEPT`` bytes of it kept (read on a thread)."""

    def __init__(self, pipe):
        self.head, self.tail, self.dropped = bytearray(), bytearray(), 0
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe) -> None:
        with pipe:
            for chunk in iter(lambda: pipe.read1(1 << 16), b""):
                room = OUTPUT_KEPT - len(self.head)
                self.head += chunk[:room]
                self.tail += chunk[room:] if room > 0 else chunk
                if len(self.tail) > OUTPUT_KEPT:
                    self.dropped += len(self.tail) - OUTPUT_KEPT
                    del self.tail[:-OUTPUT_KEPT]

    def text(self) -> str:
        self.thread.join(timeout=READ_SECONDS)
        gap = f"\n[… {self.dropped:,} bytes of output left out …]\n" if self.dropped else ""
        return (bytes(self.head) + gap.encode() + bytes(self.tail)).decode(errors="replace")


def referenced_variables(texts: list[str], environ: dict[str, str]) -> list[str]:
    """Every variable the texts refer to, braced or not, but those bash sets, those given and arrays
    (``${A[@]}``: an array cannot enter a script from its environment, so it gets no placeholder)."""
    names = dict.fromkeys(name for text in texts for name in _REFERENCE.findall(text))
    arrays = array_references(texts)
    return [name for name in names if name not in _BASH_OWN and name not in environ and name not in arrays]


def array_references(texts: list[str]) -> list[str]:
    """The names the texts expand as arrays, ``"${NAME[@]}"`` and its kin, in order."""
    return list(dict.fromkeys(name for text in texts for name in _ARRAY_REFERENCE.findall(text)))


def _default_text(text: str, start: int) -> str | None:
    """The word of ``${NAME:-word}`` that starts at ``start``, up to its closing brace."""
    end = _scan_to(text, start, "}")
    return None if end is None else text[start:end]


def script_defaults(texts: list[str]) -> tuple[dict[str, str], set[str]]:
    """({name: default} for variables the texts give one literal default, ``${X:-d}``/``${X:=d}``;
    the names given several defaults or one that is not literal text). ``${X:-}`` is no default:
    it is how a script reads X under ``set -u``."""
    found: dict[str, set[str | None]] = {}
    for text in texts:
        for match in _DEFAULT.finditer(text):
            word = _default_text(text, match.end())
            if word is None or word == "":
                continue
            if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"" and word[0] not in word[1:-1]:
                word = word[1:-1]
            found.setdefault(match.group(1), set()).add(word if re.fullmatch(DEFAULT_TEXT, word) else None)
    defaults = {name: next(iter(words)) for name, words in found.items() if len(words) == 1 and None not in words}
    return defaults, set(found) - set(defaults)


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
    texts = {script: script.read_text(errors="replace")}
    assigned = substitutions(list(texts.values()))
    environ = {"LANG": "C.UTF-8", **(values or {})}
    variables = referenced_variables(list(texts.values()), environ)
    unset: set[str] = set()  # variables read only as ${X:-} (unset is fine) enter the script unset
    computed = computed_variables(list(texts.values()))

    def placeholder(name: str) -> str:
        if name in computed:
            return str(NUMERIC_PLACEHOLDER + variables.index(name))
        return PLACEHOLDER.format(name)

    def run(extra: dict[str, str] | None = None, without: set[str] = frozenset()):
        given = {n: placeholder(n) for n in variables if n not in unset and n not in without}
        recorded = {"SLIME_CAPTURE_SUBSTITUTED": " ".join({**assigned, **computed})}
        records, result = _run(unshare, script, args, {**environ, **given, **recorded, **(extra or {})}, timeout)
        return _named_placeholders(records, variables), result

    for attempt in range(_RERUNS):
        unset = optional_variables(list(texts.values())) if attempt == 0 else unset
        records, result = run()
        if _train_call(records)[0] is None and unset:
            unset = set()  # it stops on a variable it tests, [ -z "${MASTER_ADDR:-}" ] && exit 1: give them too
            records, result = run()
        new = {path: text for path in _sourced(records, script) if path not in texts
               for text in [_text_of(path)] if text is not None}
        texts.update(new)
        assigned = {**substitutions(list(new.values())), **assigned}
        computed = {**computed_variables(list(new.values())), **computed}
        more = [name for name in referenced_variables(list(new.values()), environ) if name not in variables]
        if not more:
            break
        variables += more
    defaults, without_default = script_defaults(list(texts.values()))
    # Only a variable that still holds what it entered with can be given by the user (SCRIPT_DIR=$(…) cannot).
    kept = {name for kind, (name, *rest) in _fields(records) if kind == "SCALAR" and rest[0] == PLACEHOLDER.format(name)}
    computed = {name: how for name, how in computed.items()
                if name in variables and name not in defaults and name in kept}
    # A second run with the defaulted and computed variables unset tells, token by token, where the script's
    # default or its own value applies (``${X:-d}``, X=${X:-d} or X=$(…) before reading $X) and where it
    # reads X bare, unset.
    unset_run = None
    if any((name in defaults or name in computed) and name not in unset for name in variables):
        unset_run = run({"SLIME_CAPTURE_ALLOW_UNSET": "1"}, set(defaults) | set(computed))[0]
    values = _computed_values(unset_run or [], computed)
    captured = _parse(script, records, result, variables, {**defaults, **values}, without_default - set(values),
                      unset_run, array_references(list(texts.values())))
    used = [name for name in captured.variables if name in values]
    captured.notes += [_computed_note(name, computed[name], values[name]) for name in used]
    captured.substituted = _substituted_values(records, assigned, captured.argv)
    # What a command gave is listed like any substituted value (it may be a key read from a file), but for
    # a count: not a secret, and its occurrences in the argv cannot be told from other numbers.
    captured.substituted.update({name: (computed[name], values[name]) for name in used
                                 if not values[name].isdigit()})
    return captured


def _named_placeholders(records: list[str], variables: list[str]) -> list[str]:
    """The records with each computed variable's numeric placeholder turned into its named one."""
    def named(match: re.Match) -> str:
        index = int(match.group(1))
        return PLACEHOLDER.format(variables[index]) if index < len(variables) else match.group(0)

    return [_NUMERIC_PLACEHOLDER.sub(named, record) for record in records]


def _computed_values(unset_run: list[str], computed: dict[str, str]) -> dict[str, str]:
    """{name: the value the script computed} of the computed variables, as the run with them unset held
    them at train.py's call: only values of literal text (a default a shell reference can hold)."""
    values = {}
    for kind, (name, *rest) in _fields(unset_run):
        if kind == "SCALAR" and name in computed and name not in values:
            if rest[0] and not _PLACEHOLDER.search(rest[0]) and re.fullmatch(DEFAULT_TEXT, rest[0]):
                values[name] = rest[0]
    return values


def _computed_note(name: str, how: str, value: str) -> str:
    stand_ins = [command for command in FAKED if re.search(rf"(?<![\w/.-]){re.escape(command)}(?![\w.-])", how)]
    if stand_ins:
        source = (f"{' and '.join(stand_ins)} {'is a stand-in' if len(stand_ins) == 1 else 'are stand-ins'} while "
                  f"importing that prints nothing, and with it the script's value is {value}")
    else:
        source = f"the script's value is {value} here"
    return (f"{name}: the script computes it, {how}; {source}. The config holds {value} where a number flag uses it "
            f"(${{{name}:-{value}}} in a text flag): import with --set {name}=VALUE for another value, or override "
            "the flag in the config")


def _substituted_values(records: list[str], assigned: dict[str, str], argv: list[str]) -> dict[str, tuple[str, str]]:
    """{name: (command, value)} of the variables assigned from a command substitution whose value, as the
    script held it when it ran train.py, is in the argv."""
    values = {}
    for kind, (name, *rest) in _fields(records):
        if kind == "SCALAR":
            values.setdefault(name, rest[0])
    return {name: (assigned[name], value) for name, value in values.items()
            if name in assigned and value.strip() and any(value.strip() in token for token in argv)}


def optional_variables(texts: list[str]) -> set[str]:
    """Variables every reference of which is ``${X:-}`` or ``${X-}``: the script reads them as possibly unset."""
    total: dict[str, int] = {}
    optional: dict[str, int] = {}
    for text in texts:
        for name in _REFERENCE.findall(text):
            total[name] = total.get(name, 0) + 1
        for name in _EMPTY_DEFAULT.findall(text):
            optional[name] = optional.get(name, 0) + 1
    return {name for name, count in optional.items() if count == total.get(name)}


def _run(unshare: list[str], script: Path, args: list[str] | None, environ: dict[str, str],
         timeout: float) -> tuple[list[str], subprocess.CompletedProcess]:
    """One run of the script in the sandbox: the records it left, and how it ended."""
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
        capture_file = out / CAPTURE_FILE
        capture_file.touch()  # what is read when the sandbox copies nothing back
        # Inside the sandbox ``out`` is its scratch folder (a tmpfs): the records, TMPDIR and HOME (unless
        # the script refers to HOME, which then enters as a placeholder like any variable it reads).
        env = {
            "HOME": str(out / "home"),
            **environ,
            "TMPDIR": str(out / "tmp"),
            "PATH": f"{stubs}:/usr/local/bin:/usr/bin:/bin",
            "BASH_ENV": str(prelude),
            "SLIME_CAPTURE_FILE": str(capture_file),
        }
        spec = {"root": str(root), "covers": _covers(stubs), "scratch": str(out), "scratch_folders": ["home", "tmp"],
                "capture": CAPTURE_FILE, "command": ["bash", str(script), *(args or [])], "cwd": str(script.parent),
                "env": env}
        (tmp_path / "spec.json").write_text(json.dumps(spec))
        command = [*unshare, sys.executable, "-I", str(SANDBOX), str(tmp_path / "spec.json")]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
        stderr = _Kept(process.stderr)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()  # unshare --kill-child: the sandbox and everything in it go too
            process.wait()
            raise CaptureError(f"{script} did not finish within {timeout:.0f} s with its commands replaced") from None
        result = subprocess.CompletedProcess(command, process.returncode, "", stderr.text())
        if not (out / "ready").exists():
            reasons = [line.removeprefix("slime-sandbox: ") for line in result.stderr.splitlines()
                       if line.startswith("slime-sandbox: ")]
            raise CaptureError(_refusal(reasons[-1] if reasons else result.stderr.strip() or
                                        f"the sandbox exited with status {result.returncode}"))
        left = [line.removeprefix("slime-sandbox: ") for line in result.stderr.splitlines()
                if line.startswith("slime-sandbox: the capture file ")]
        if left:  # what the script left in place of the capture file (a FIFO, a link): never read
            raise CaptureError(f"{script}: {left[-1]}; the importer reads only a regular file there")
        records = read_bounded(capture_file, CAPTURE_LIMIT).decode(errors="replace")
        return records.split("\0")[:-1], result


def _sourced(records: list[str], script: Path) -> list[Path]:
    """The files the run sourced, in order, as absolute paths."""
    paths = [Path(values[0]) for kind, values in _fields(records) if kind == "SOURCE"]
    return [p if p.is_absolute() else script.parent / p for p in paths]


def _refusal(reason: str) -> str:
    return (f"the script was not run: the importer runs launchers only in a sandbox (new user, mount, PID and "
            f"network namespaces, a read-only file system), and none can be built here: {reason}. "
            "See docs/importing.md")


def _fields(records: list[str]):
    """(kind, values) of each record the prelude and the stubs wrote; CaptureError for a capture file the
    script garbled (it can write there too)."""
    fields = iter(records)
    try:
        for kind in fields:
            if kind in ("SOURCE", "ENTRY"):
                yield kind, [next(fields)]
            elif kind == "ARGV":
                yield kind, [next(fields) for _ in range(int(next(fields)))]
            elif kind in ("ARRAY", "STUB"):
                name = next(fields)
                yield kind, [name, *[next(fields) for _ in range(int(next(fields)))]]
            elif kind == "SCALAR":
                yield kind, [next(fields), next(fields)]
    except (StopIteration, ValueError):
        raise CaptureError("the capture file the script's run left is malformed (the script wrote into it?)") from None


def _train_call(records: list[str]) -> tuple[list[str] | None, dict[str, list[str]], str]:
    """The argv train.py (or train_async.py) got in a run, the arrays of the shell at that moment, and
    which of the two scripts it was."""
    argv, arrays, entry, stub = None, {}, DEFAULT_ENTRY_POINT, None
    for kind, values in _fields(records):
        if kind == "ENTRY":
            entry = values[0] if argv is None else entry
        elif kind == "ARGV":
            if argv is None:
                argv, arrays = values, {}
        elif kind == "ARRAY":
            name, values = values[0], values[1:]
            if argv is not None and name not in arrays:
                arrays[name] = values
        elif kind == "STUB":
            name, values = values[0], values[1:]
            if stub is None and name.endswith(("python", "python3")):
                stub = _train_argv(values)
            elif stub is None and name.endswith("ray") and "--" in values:
                rest = values[values.index("--") + 1:]
                if rest and rest[0].endswith(("python", "python3")):
                    stub = _train_argv(rest[1:])
    if argv is not None:
        return argv, arrays, entry
    return (stub[1], {}, stub[0]) if stub else (None, {}, DEFAULT_ENTRY_POINT)


class _Restorer:
    """Placeholders back into shell references: ``${X:-d}`` where the run with the defaulted variables
    unset shows the script's default there, ``${X}`` elsewhere."""

    def __init__(self, defaults: dict[str, str], unset_run: list[str] | None):
        self.defaults = defaults
        argv, arrays, _ = _train_call(unset_run) if unset_run is not None else (None, {}, None)
        self.unset = {"": argv or [], **arrays}
        self.computed: dict[int, str] = {}  # index in train.py's argv → the script's value kept there

    def __call__(self, token: str, where: str = "", index: int | None = None) -> str:
        plain = _PLACEHOLDER.sub(lambda m: reference(m.group(1)), token)
        unset = self.unset.get(where, [])
        if index is None or index >= len(unset):
            return plain
        if plain == token and unset[index] != token and not _PLACEHOLDER.search(unset[index]):
            # No reference left, yet the value changes with the defaulted or computed variables: the script
            # computed it from them ($((NUM_GPUS / 2))), which no reference can hold. Keep the script's value.
            if not where:
                self.computed[index] = unset[index]
            return unset[index]
        with_defaults = _PLACEHOLDER.sub(lambda m: self.defaults.get(m.group(1), m.group(0)), token)
        if with_defaults == token or with_defaults != unset[index]:
            return plain
        return _PLACEHOLDER.sub(lambda m: reference(m.group(1), self.defaults.get(m.group(1))), token)


def _parse(script: Path, records: list[str], result: subprocess.CompletedProcess, variables: list[str],
           defaults: dict[str, str], without_default: set[str], unset_run: list[str] | None = None,
           expanded_arrays: list[str] = ()) -> Capture:
    argv, arrays, entry_point = _train_call(records)
    restore = _Restorer(defaults, unset_run)
    if argv is None:
        missing = _MISSING_FILE.findall(result.stderr)
        if missing:
            raise CaptureError(f"it sources or runs {restore(missing[0])}, which does not exist: import it from where "
                               "that file is, or create it (for a model file, the MODEL_ARGS array), or give the "
                               "variables in its path with --set NAME=VALUE")
        detail = "".join(f"\n    {restore(line)}" for line in result.stderr.strip().splitlines()[-3:])
        raise CaptureError(f"it never ran train.py (exit status {result.returncode}); the end of its output:{detail}"
                           if detail else f"it never ran train.py (exit status {result.returncode})")
    argv = [restore(t, "", i) for i, t in enumerate(argv)]
    computed = [f"{argv[i - 1] if i and argv[i - 1].startswith('-') else 'train.py'} {value}: the script computes it "
                "from variables it defaults or computes, in a form no shell reference can hold (arithmetic?), so the "
                "config holds the script's own value" for i, value in restore.computed.items()]
    used = [name for name in variables if any(shell_refs_of(name, t) for t in argv)]
    return Capture(
        script=script,
        argv=argv,
        arrays={name: [restore(t, name, i) for i, t in enumerate(values)] for name, values in arrays.items()},
        sourced=_sourced(records, script),
        variables=used,
        defaults={name: defaults[name] for name in used if reference(name, defaults.get(name, "")) in "".join(argv)},
        notes=computed + [f"{name}: the script gives it several defaults, or one that is not literal text, so the config "
               f"refers to ${{{name}}} without one: export it" for name in used if name in without_default] +
              [f"{name}: the script expands \"${{{name}[@]}}\" but never defines it, and bash expands an undefined "
               "array to nothing: it is taken as empty" for name in expanded_arrays if name not in arrays],
        entry_point=entry_point,
    )


def shell_refs_of(name: str, token: str) -> bool:
    return name in shell_refs(token)


def _train_argv(argv: list[str]) -> tuple[str, list[str]] | None:
    """(the trainer script, its argv) of a python command line that runs one."""
    for index, arg in enumerate(argv):
        if arg.endswith(tuple(ENTRY_POINTS)):
            return Path(arg).name, argv[index + 1:]
        if not arg.startswith("-"):
            return None
    return None
