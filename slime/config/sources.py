"""Checks of the config files on the search path, made before Hydra reads them, for what Hydra
would turn into a traceback or silently get wrong:

- a file that is not UTF-8 (Hydra fails on it whatever is asked, even a misspelled config name);
- a UTF-8 byte-order mark before a ``# @package`` line (Hydra then does not see the line, and the
  file's keys land in the wrong package);
- YAML aliases that expand a few hundred bytes into millions of nodes (an "alias bomb": composing
  it takes minutes and gigabytes);
- and, once Hydra has failed, YAML syntax errors with their line and column.

Each problem names the file; all of them are reported at once.
"""

from __future__ import annotations

from pathlib import Path

import yaml

BOM = b"\xef\xbb\xbf"
MAX_NODES = 100_000  # far above any real config (the largest primary config composes ~1,000 nodes)


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
    if "&" in text and "*" in text:  # anchors and aliases: only then can the expansion explode
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            return []  # a syntax error: reported with its position once Hydra fails
        if node is not None and _expanded_size(node, {}) > MAX_NODES:
            return [f"{_shown(file)}: its YAML aliases expand to more than {MAX_NODES:,} nodes (an alias bomb?); "
                    "a config is never that large: write the values out or use interpolations"]
    return []


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
