"""Checks of the config files on the search path, made before Hydra reads them, for what Hydra
would turn into a traceback or silently get wrong:

- a file that is not UTF-8 (Hydra fails on it whatever is asked, even a misspelled config name);
- a UTF-8 byte-order mark before a ``# @package`` line (Hydra then does not see the line, and the
  file's keys land in the wrong package);
- YAML aliases that expand a few hundred bytes into millions of nodes (an "alias bomb": composing
  it takes minutes and gigabytes);
- a file larger than ``MAX_BYTES``, nested deeper than ``MAX_DEPTH`` (20,000 levels made Python's
  YAML composer fail with a RecursionError, whichever config was asked for) or holding more than
  ``MAX_NODES`` nodes (300,000 keys took Hydra minutes), found by an event scan that never recurses;
- and, once Hydra has failed, YAML syntax errors with their line and column.

A defaults list that includes itself (``a → b → a``) or nests without end is found when Hydra runs
out of stack composing it (``defaults_recursion``), and told with the chain of files.

Each problem names the file; all of them are reported at once.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

BOM = b"\xef\xbb\xbf"
MAX_NODES = 100_000  # far above any real config (the largest primary config composes ~1,000 nodes)
MAX_BYTES = 1 << 20  # the largest config file here is under 3 KB
MAX_DEPTH = 64  # the deepest key of a real config is a handful of levels down
MAX_DEFAULTS_DEPTH = 100  # defaults lists including defaults lists, this many levels down at most
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _config_files(config_dirs: list[Path]) -> list[Path]:
    files = [file for config_dir in config_dirs for file in sorted(Path(config_dir).rglob("*.yaml"))]
    return list(dict.fromkeys(files))  # folders may overlap (-cd conf/model)


def _shown(file: Path) -> str:
    from slime.config.provenance import display_path

    return display_path("file://" + str(file.parent), file.stem)


def _expanded_size(node, sizes: dict[int, int]) -> int:
    """Nodes the YAML becomes once every alias is expanded (shared anchors counted once per use)."""
    key = id(node)
    if key not in sizes:
        sizes[key] = 0  # a recursive alias counts as one node, not forever
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [item for pair in node.value for item in pair]
        else:
            children = []
        total = 1
        for child in children:
            total += _expanded_size(child, sizes)
            if total > MAX_NODES:
                break
        sizes[key] = total
    return sizes[key]


def file_problems(file: Path) -> list[str]:
    """What is wrong with one config file before Hydra reads it (empty when nothing is)."""
    try:
        data = file.read_bytes()
    except OSError as err:
        return [f"{_shown(file)}: cannot be read ({err.strerror or err}); Hydra would fail on it"]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        return [f"{_shown(file)}: not UTF-8 (byte 0x{data[err.start]:02x} on line {line}); Hydra reads config "
                "files as UTF-8: save it as UTF-8"]
    if data.startswith(BOM) and "@package" in text[:512]:
        return [f"{_shown(file)}: starts with a UTF-8 byte-order mark, which hides its '# @package' line from Hydra: "
                "save it without the mark"]
    if len(data) > MAX_BYTES:
        return [f"{_shown(file)}: {len(data):,} bytes, more than a config file may hold here ({MAX_BYTES:,}); a "
                "config is never that large: is it a data file in the config folder?"]
    shape = _shape_problem(text)
    if shape:
        return [f"{_shown(file)}: {shape}"]
    if "&" in text and "*" in text:  # anchors and aliases: only then can the expansion explode
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return []  # a syntax error: reported with its position once Hydra fails
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            return [f"{_shown(file)}: its YAML aliases expand to more than {MAX_NODES:,} nodes (an alias bomb?); "
                    "a config is never that large: write the values out or use interpolations"]
    return []


_BLOCK_INDICATOR = re.compile(r"[-?](?=[ \t\n]|$)")


def _within_bounds_for_sure(text: str) -> bool:
    """Whether the text cannot exceed the bounds, without parsing: each node takes a character at least,
    and each level of nesting a flow bracket, a block indicator ("- ", "? ") or a deeper indentation."""
    if len(text) > MAX_NODES:
        return False
    indent = max((len(line) - len(line.lstrip(" ")) for line in text.splitlines()), default=0)
    levels = text.count("[") + text.count("{") + len(_BLOCK_INDICATOR.findall(text)) + indent + 2
    return levels <= MAX_DEPTH


def _shape_problem(text: str) -> str | None:
    """Nesting or node count past the bounds, from YAML's event stream (iterative, so any depth is safe)."""
    if _within_bounds_for_sure(text):
        return None
    depth = nodes = 0
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    line = event.start_mark.line + 1 if event.start_mark else "?"
                    return (f"nested more than {MAX_DEPTH} levels deep (at line {line}); a config is never that deep: "
                            "flatten it")
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                nodes += 1
                if nodes > MAX_NODES:
                    return f"holds more than {MAX_NODES:,} keys and values; a config is never that large"
    except yaml.YAMLError:
        return None  # a syntax error: reported with its position once Hydra fails
    return None


def _defaults_entries(data) -> list[str]:
    """The config paths a defaults list names, relative as written (``name``, ``group/option``, ``/abs``)."""
    entries = data.get("defaults") if isinstance(data, dict) else None
    names = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, str) and entry != "_self_":
            names.append(entry.removeprefix("optional ").split("@")[0].strip())
        elif isinstance(entry, dict):
            for key, value in entry.items():
                group = str(key).removeprefix("override ").removeprefix("optional ").split("@")[0].strip()
                for option in value if isinstance(value, list) else [value]:
                    if isinstance(option, str) and "${" not in option:
                        names.append(f"{group}/{option}")
    return names


def _nesting(text: str) -> int:
    """How deep brackets and braces nest in an override's text (quoted parts left out)."""
    depth = deepest = 0
    quote = None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]})":
            depth -= 1
    return deepest


def override_problems(overrides: list[str]) -> list[str]:
    """Overrides nested past ``MAX_DEPTH`` (Hydra's parser takes minutes on them, then runs out of stack)."""
    return [f"override {o[:40]}…: nested more than {MAX_DEPTH} levels deep; a config is never that deep"
            for o in overrides if _nesting(o) > MAX_DEPTH]


def defaults_recursion(config_name: str, config_dirs: list[Path]) -> str:
    """What to say when composing ``config_name`` exhausted Python's stack: the cycle of defaults lists
    (``a.yaml → b.yaml → a.yaml``), or the chain that nests past ``MAX_DEFAULTS_DEPTH``, read from the
    files themselves."""
    def find(path: str) -> Path | None:
        return next((Path(d) / f"{path}.yaml" for d in config_dirs if (Path(d) / f"{path}.yaml").is_file()), None)

    def walk(path: str, chain: list[str]) -> list[str] | None:
        if path in chain or len(chain) >= MAX_DEFAULTS_DEPTH:
            return [*chain, path]
        file = find(path)
        try:
            data = yaml.load(file.read_text(encoding="utf-8"), Loader=_LOADER) if file else None
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            return None
        group = path.rpartition("/")[0]
        for entry in _defaults_entries(data):
            target = entry[1:] if entry.startswith("/") else "/".join(filter(None, [group, entry]))
            found = walk(target, [*chain, path])
            if found:
                return found
        return None

    chain = walk(config_name, [])
    if chain and chain[-1] in chain[:-1]:
        cycle = chain[chain.index(chain[-1]):]
        return (f"the defaults lists include each other without end: {' → '.join(_shown(find(p)) for p in cycle)}; "
                "remove one of these entries")
    if chain:
        return (f"the defaults lists nest more than {MAX_DEFAULTS_DEPTH} levels deep "
                f"({_shown(find(chain[0]))} → … → {chain[-1]}.yaml)")
    return (f"composing {config_name} exhausted Python's stack: a defaults list includes itself, directly or through "
            "others, or nests without end")


def config_problems(config_dirs: list[Path]) -> list[str]:
    """Every problem of every config file on the search path."""
    return [problem for file in _config_files(config_dirs) for problem in file_problems(file)]


def yaml_syntax_problems(config_dirs: list[Path]) -> list[str]:
    """Every config file that is not valid YAML, with the line and what the parser expected."""
    problems = []
    for file in _config_files(config_dirs):
        try:
            yaml.safe_load(file.read_text(encoding="utf-8", errors="replace"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            what = " ".join(filter(None, [getattr(err, "problem", None), getattr(err, "context", None)]))
            problems.append(f"{_shown(file)}: YAML syntax error{where}: {what or err}")
    return problems
