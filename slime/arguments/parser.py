"""The one argument parser of slime, used by ``train.py`` and by the config generator alike.

``parse_args(argv)`` parses slime's own flags, Megatron-LM's flags (the project's registry,
``megatron_flags``) and SGLang's server flags (``--sglang-`` prefix, ``sglang_flags``), then
runs every cross-field check (``validation``) and returns the Namespace the trainer runs on.
Every problem is reported at once in one ``ArgumentProblems``; an unknown flag is an error
that suggests the closest known one. Importing this module pulls in no torch, Ray, Megatron
or SGLang.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from functools import lru_cache

from slime.arguments import validation
from slime.arguments.problems import ArgumentProblems, Problem
from slime.arguments.registry import GROUP_ORDER, all_flags, flag_by_option
from slime.arguments.sglang_flags import slime_owned_hint

__all__ = ["ArgumentProblems", "build_parser", "looks_like_option", "parse_args", "parse_argv", "validate_args"]

# argparse reads `-1e-5` as a flag; also accept scientific negatives as values (`--lr -1e-5`).
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise _ParseError(message)


class _ParseError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    """A fresh parser with every flag, in argument groups a reader can follow."""
    parser = _Parser(
        prog="train.py",
        description="slime: RL post-training with Megatron (training), SGLang (rollout) and Ray (placement).",
        allow_abbrev=False,
        exit_on_error=False,
    )
    parser._negative_number_matcher = _NEGATIVE_NUMBER
    groups = {title: parser.add_argument_group(title) for title in GROUP_ORDER}
    for f in all_flags():
        f.add_to(groups[f.group])
    return parser


@lru_cache(maxsize=1)
def _shared_parser() -> argparse.ArgumentParser:
    return build_parser()


def looks_like_option(token: str) -> bool:
    """Whether argparse reads ``token`` as a flag (negative numbers are values)."""
    return token.startswith("-") and len(token) > 1 and not _NEGATIVE_NUMBER.match(token)


def _suggest(option: str) -> str:
    name = option.split("=", 1)[0]
    hint = slime_owned_hint(name)
    if hint:
        return f"unknown flag {name}: {hint}"
    close = difflib.get_close_matches(name, flag_by_option().keys(), n=1, cutoff=0.7)
    if close:
        return f"unknown flag {name}: did you mean {close[0]}?"
    return f"unknown flag {name}: no similar flag exists (see docs/arguments.md)"


def _chunks(argv: list[str]) -> list[list[str]]:
    """Split an argv into one chunk per flag with its values (a leading chunk may hold stray values)."""
    chunks: list[list[str]] = []
    for token in argv:
        if looks_like_option(token) or not chunks:
            chunks.append([token])
        else:
            chunks[-1].append(token)
    return chunks


def _chunk_problems(parser: argparse.ArgumentParser, chunk: list[str]) -> list[Problem]:
    head = chunk[0]
    if not looks_like_option(head):
        return [Problem(f"unexpected value(s) {' '.join(map(repr, chunk))} before any flag")]
    name = head.split("=", 1)[0]
    try:
        _, extras = parser.parse_known_args(chunk)
    except (_ParseError, argparse.ArgumentError) as err:
        return [Problem(str(err), (name,))]
    if extras and extras[0] == head:
        return [Problem(_suggest(head), (name,))]
    if extras:
        known = flag_by_option().get(name)
        takes = "no value" if known and known.type_name == "flag" else "one value"
        return [Problem(f"{name} takes {takes}, got extra {' '.join(map(repr, extras))}", (name,))]
    return []


def parse_argv(argv: list[str]) -> argparse.Namespace:
    """Parse without cross-field checks; raise ArgumentProblems naming every bad token at once."""
    parser = _shared_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if not extras:
            return args
        whole_error = f"unrecognized arguments: {' '.join(extras)}"
    except (_ParseError, argparse.ArgumentError) as err:
        whole_error = str(err)
    problems = [p for chunk in _chunks(argv) for p in _chunk_problems(parser, chunk)]
    raise ArgumentProblems(problems or [Problem(whole_error)], "invalid command line")


def validate_args(args: argparse.Namespace) -> argparse.Namespace:
    """Run every cross-field check and set the derived values; see ``slime.arguments.validation``."""
    return validation.validate(args)


def parse_args(argv: list[str] | None = None, *, validate: bool = True) -> argparse.Namespace:
    """The Namespace the trainer runs on: parsed, checked across fields, derived values set.

    A flag that does not parse (a bad type, say) does not hide the other problems: the rest of the
    command line is still checked across fields, leaving out what involves the flags that failed."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_argv(argv)
    except ArgumentProblems as err:
        bad = {flag for problem in err.problems for flag in problem.flags}
        if not validate or not bad or any(not problem.flags for problem in err.problems):
            raise
        rest = [token for chunk in _chunks(argv) if chunk[0].split("=", 1)[0] not in bad for token in chunk]
        try:
            validate_args(parse_argv(rest))
        except ArgumentProblems as more:
            raise ArgumentProblems([*err.problems, *(p for p in more.problems if not bad & set(p.flags))],
                                   err.title) from None
        raise
    return validate_args(args) if validate else args

