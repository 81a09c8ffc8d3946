"""Loading user functions named on the command line, in either spelling upstream slime users write:
``module.path.function`` (upstream's) or ``module.path:function``. After the module, the rest is a
chain of attributes (``module.path.Class.method``, ``module.path:Class.method``)."""

from __future__ import annotations

import importlib
import re
from typing import Callable

DEFAULT_ROLLOUT_FUNCTION = "slime.rollout.sglang_rollout.generate_rollout"
SFT_ROLLOUT_FUNCTION = "slime.rollout.sft_rollout.generate_rollout"
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def canonical(path: str) -> str:
    """One spelling of a function path: ``a.b:c`` → ``a.b.c``."""
    return path.replace(":", ".", 1)


def same_function(path: str | None, other: str) -> bool:
    return path is not None and canonical(path) == canonical(other)


def path_problem(path: str) -> str | None:
    """Why ``path`` cannot name a function, or None when it has the shape of one (module and name)."""
    module, sep, rest = path.partition(":")
    if sep and _DOTTED.fullmatch(module) and _DOTTED.fullmatch(rest):
        return None
    if not sep and _DOTTED.fullmatch(path) and "." in path:
        return None
    return f"expected module.path.function or module.path:function, got {path!r}"


def _import_longest(dotted: str, path: str):
    """(the longest importable module prefix of ``dotted``, the attribute names after it)."""
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:cut])
        try:
            return importlib.import_module(name), parts[cut:]
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):  # a module it imports is missing
                raise ValueError(f"cannot import {name!r} for {path!r}: {err}") from None
        except ImportError as err:
            raise ValueError(f"cannot import {name!r} for {path!r}: {err}") from None
    raise ValueError(f"cannot import {parts[0]!r} for {path!r}: no module named {parts[0]!r}")


def load_function(path: str) -> Callable:
    problem = path_problem(path)
    if problem:
        raise ValueError(problem)
    module_name, sep, rest = path.partition(":")
    if sep:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"cannot import {module_name!r} for {path!r}: {err}") from None
        names = rest.split(".")
    else:
        module, names = _import_longest(path, path)
    target = module
    for name in names:
        try:
            target = getattr(target, name)
        except AttributeError:
            raise ValueError(f"{getattr(target, '__name__', target)!r} has no {name!r} (from {path!r})") from None
    return target
