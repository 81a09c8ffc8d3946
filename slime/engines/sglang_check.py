"""Each engine's SGLang server arguments checked with SGLang's own code, as far as it runs without a GPU.

SGLang's parser (``ServerArgs.add_cli_args``) reads the exact command the engine group will run —
flag names, types, choices — and ``ServerArgs.from_cli_args`` builds the record. In the pinned
0.5.23 that construction checks little; the checks of ``ServerArgs.resolve_once`` (model config,
parallel sizes against the checkpoint, …) need torchvision and the checkpoint's ``config.json``, so
they run only where both are present, and are otherwise reported as not checked. Each problem names
the config key (the ``--sglang-*`` flag, or slime's own for what slime sets).

    python -m slime.engines.sglang_check -- <train.py flags>      # exit 1 when SGLang objects
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import re
from pathlib import Path

from slime.engines.command import (EngineSlot, config_key, engine_count, nodes_per_engine, server_args,
                                           server_command)
from slime.arguments.sglang_flags import load_snapshot


class _ParserError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit; a check reports instead
        raise _ParserError(message)


def _sample_slot(args: argparse.Namespace, engine: int, node: int) -> EngineSlot:
    """Run-time values of the right kind where the plan has placeholders."""
    spans = nodes_per_engine(args) > 1
    return EngineSlot(engine, node, "127.0.0.1", 30000 + engine, 31000 + engine, 0,
                      f"127.0.0.1:{32000 + engine}" if spans else None)


def _key_of_option(option: str) -> str:
    for entry in load_snapshot()["flags"]:
        if option in entry["options"]:
            return config_key(entry["dest"])
    return option


def _parser_problem(message: str) -> str:
    named = re.match(r"argument ([^:]+): (.*)", message)
    if named:
        option = named.group(1).split("/")[0]
        return f"{_key_of_option(option)}: SGLang's parser says: {named.group(2)}"
    return f"SGLang's parser says: {message}"


class _Collect(logging.Handler):
    """Keeps what SGLang logs (its deprecation warnings) while it reads a command."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _warnings(output: str) -> list[str]:
    """SGLang's deprecation warnings (printed while parsing), each naming the config key."""
    found = []
    for line in re.sub(r"\x1b\[[0-9;]*m", "", output).splitlines():
        quoted = re.match(r"'(--[\w-]+)' (is deprecated.*)", line.strip())
        if quoted:
            found.append(f"{_key_of_option(quoted.group(1))}: SGLang says {quoted.group(1)} {quoted.group(2)}")
    return found


@contextlib.contextmanager
def _sglang_warnings():
    """Collects what SGLang logs at WARNING and above while the block runs, and keeps it from SGLang's
    own handlers (it is reported once, by config key). It hears them whatever the root logger's level
    (Hydra's logging settings set it, in this process) and though a logging.config call in this process
    disabled the SGLang loggers that existed then; every logger is as it was afterwards."""
    collect = _Collect()
    top = logging.getLogger("sglang")
    loggers = [top] + [logger for name, logger in list(logging.getLogger().manager.loggerDict.items())
                       if name.startswith("sglang.") and isinstance(logger, logging.Logger)]
    disabled, propagate, level = {logger: logger.disabled for logger in loggers}, top.propagate, top.level
    top.addHandler(collect)
    top.propagate = False
    top.setLevel(logging.WARNING)
    for logger in loggers:
        logger.disabled = False
    try:
        yield collect.messages
    finally:
        top.removeHandler(collect)
        top.propagate = propagate
        top.setLevel(level)
        for logger, was in disabled.items():
            logger.disabled = was


def check_server_args(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """(problems, notes) of every engine's server command: what SGLang rejects, and what it warns
    about or what stayed unchecked. Imports SGLang."""
    from sglang.srt.server_args import ServerArgs

    parser = _Parser(add_help=False, allow_abbrev=False)
    ServerArgs.add_cli_args(parser)
    problems: list[str] = []
    unchecked: list[str] = []
    resolvable = importlib.util.find_spec("torchvision") is not None and \
        (Path(args.hf_checkpoint or "") / "config.json").is_file()
    if not resolvable:
        unchecked.append("ServerArgs.resolve_once (model config, parallel sizes against the checkpoint) needs "
                         "torchvision and the checkpoint's config.json; not checked here")
    for engine in range(engine_count(args)):
        for node in range(nodes_per_engine(args)):
            command = server_command(args, _sample_slot(args, engine, node))
            found = []
            with _sglang_warnings() as said:
                try:
                    record = ServerArgs.from_cli_args(parser.parse_args(command[3:]))
                    if resolvable:
                        record.resolve_once()
                except _ParserError as err:
                    found.append(_parser_problem(str(err)))
                except Exception as err:  # SGLang's own validation errors
                    found.append(f"{_culprit(args, engine, node, str(err))}SGLang says: {err}")
            problems += [problem for problem in found if problem not in problems]
            for warning in _warnings("\n".join(said)):
                if warning not in unchecked:
                    unchecked.append(warning)
    return problems, unchecked


def _culprit(args: argparse.Namespace, engine: int, node: int, message: str) -> str:
    """The config keys whose SGLang names the message mentions, as a prefix."""
    keys = [config_key(dest) for dest in server_args(args, _sample_slot(args, engine, node))
            if len(dest) > 4 and re.search(rf"\b{dest}\b", message)]
    return f"{', '.join(keys)}: " if keys else ""


def main(argv: list[str] | None = None) -> int:
    import sys

    from slime.arguments.parser import ArgumentProblems, parse_args

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    try:
        args = parse_args(argv)
    except ArgumentProblems as err:
        print(err, file=sys.stderr)
        return 2
    problems, unchecked = check_server_args(args)
    for note in unchecked:
        print(f"note: {note}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    print(f"{engine_count(args)} engine(s): {'SGLang accepts their server arguments' if not problems else 'see above'}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
