"""From a composed Hydra config to validated bash arrays.

``generate`` resolves the config, flattens it into argv per array (``flatten``), writes the
role-override file of a ``roles:`` section, runs the whole argv through the trainer's own
parser and checks (``slime.arguments.parser``), and maps every problem back to the config key,
its value and the file that set it. It raises ``GenerationError`` with all problems at once.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from slime.config.checkpoint_names import model_dir_problems, model_type_problems
from slime.config.flatten import KeyProblem, argv_of, flatten
from slime.config.hydra_policy import targets
from slime.config.provenance import Provenance
from slime.config.shell import DEFAULT_CHARACTERS, set_by_bash, shell_refs, unwritable_default
from slime.arguments.parser import ArgumentProblems, parse_args
from slime.arguments.registry import flag_by_option
from slime.arguments.entry_points import DEFAULT_ENTRY_POINT, ENTRY_POINTS, entry_point_problems
from slime.arguments.problems import Problem
from slime.arguments.arg_types import format_number

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What the parser says about the inline role overrides, to be told in terms of the roles: section.
_ROLE_PROBLEM = re.compile(r"^--megatron-config-path \(inline\)(?:, entry \d+ \(role (?P<role>\w+)\))?:? (?P<rest>.*)$",
                           re.S)
_ROLE_KEY = re.compile(r"^(?:unknown key )?(?P<key>\w+)")


class GenerationError(ArgumentProblems):
    """Every problem of one config, each naming its key, value and file."""

    def __init__(self, config_name: str, messages: list[str]):
        self.config_name = config_name
        self.messages = messages
        super().__init__([Problem(m) for m in messages],
                         f"cannot generate args for {config_name or '(no --config-name)'}")


@dataclass
class Generated:
    config_name: str
    overrides: list[str]
    arrays: dict[str, list[list[str]]]
    namespace: argparse.Namespace
    roles: str | None = None  # the --megatron-config-path value of a roles: section (inline JSON)
    env: dict[str, str] = field(default_factory=dict)
    entry_point: str = DEFAULT_ENTRY_POINT  # the script the launcher runs (slime.arguments.entry_points)
    explainer: _Explainer | None = field(default=None, repr=False, compare=False)

    @property
    def argv(self) -> list[str]:
        return argv_of(self.arrays)

    def explain(self, message: str, flags: tuple[str, ...]) -> str:
        """A problem a later check found with ``flags``, in the generator's words: the config keys
        that set them, their values and files."""
        return self.explainer.parser_problem(message, tuple(flags)) if self.explainer else message


def _unwritable_text(value) -> str | None:
    """Why a value cannot be a command-line argument, if it cannot: a NUL, or text that is not Unicode
    (a lone surrogate: what invalid UTF-8 on the command line becomes in Python)."""
    texts = [value] if isinstance(value, str) else []
    if isinstance(value, dict):
        texts = [str(k) for k in value] + [t for v in value.values() for t in [v] if isinstance(t, str)]
        nested = [_unwritable_text(v) for v in value.values() if isinstance(v, (dict, list))]
    elif isinstance(value, list):
        nested = [_unwritable_text(v) for v in value]
    else:
        nested = []
    for text in texts:
        if "\x00" in text:
            return "contains a NUL character, which no command-line argument can hold"
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            return (f"is not valid Unicode: {text[err.start]!r} at position {err.start + 1} (invalid UTF-8 given on "
                    "the command line, or a lone surrogate escape in YAML)")
        special = [name for name in shell_refs(text) if set_by_bash(name)]
        if special:
            return (f"refers to ${{{special[0]}}}, which bash sets itself, so it would never be reported unset "
                    "and would not be what you export: use a variable name of your own")
        bad_default = unwritable_default(text)
        if bad_default:
            return (f"has {bad_default}… whose default is not literal text: a default holds only {DEFAULT_CHARACTERS} "
                    "(no $(…), backticks, quotes, spaces or nested expansions), and ends at the first }")
    return next((problem for problem in nested if problem), None)


# A node interpolation inside a value: ${run.model_dir}, ${.save}, ${..x} (not an escaped \${…}).
_NODE_REFERENCE = re.compile(r"(?<!\\)\$\{(?P<dots>\.*)(?P<key>[\w\-/\[\]]+(?:\.[\w\-/\[\]]+)*)\}")


def _references(path: str, raw) -> set[str]:
    """The config keys a raw value (at ``path``) refers to by interpolation, as absolute dotted paths."""
    if isinstance(raw, dict):
        return {ref for key, value in raw.items() for ref in _references(f"{path}.{key}", value)}
    if isinstance(raw, list):
        return {ref for i, value in enumerate(raw) for ref in _references(f"{path}.{i}", value)}
    refs = set()
    for match in _NODE_REFERENCE.finditer(raw if isinstance(raw, str) else ""):
        dots, key = match["dots"], match["key"]
        if not dots:
            refs.add(key)
            continue
        parent = path.split(".")[:-1]
        up = len(dots) - 1
        refs.add(".".join([*parent[:len(parent) - up], key]) if up <= len(parent) else key)
    return refs


def _one_problem_per_cause(failed: dict[str, KeyProblem], raw: dict) -> list[KeyProblem]:
    """A key that fails only because a key it refers to fails (``ckpt.load: ${.save}`` after a broken
    ``ckpt.save``) is not a problem of its own: it is named beside the key that causes it, whose problem
    also covers its flags. Keys in a cycle of references (``+run.a=${run.b} +run.b=${run.a}``) stay
    reported each."""
    def lookup(path: str):
        value = raw
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def failing(ref: str) -> str | None:
        return next((key for key in failed if ref == key or ref.startswith(key + ".") or key.startswith(ref + ".")),
                    None)

    depends = {key: {f for ref in _references(key, lookup(key)) for f in [failing(ref)] if f and f != key}
               for key in failed}

    def reached(key: str) -> set[str]:
        seen, todo = set(), list(depends[key])
        while todo:
            other = todo.pop()
            if other not in seen:
                seen.add(other)
                todo.extend(depends[other])
        return seen

    reach = {key: reached(key) for key in failed}
    # The causes: keys that fail of themselves (no failing reference) or in a cycle of references.
    roots = {key for key in failed if not depends[key] or key in reach[key]}
    consequences: dict[str, list[str]] = {key: [] for key in failed}
    kept = []
    for key, problem in failed.items():
        cause = None if key in roots else next(
            (c for c in sorted(reach[key] & roots) if failed[c].message == problem.message), None)
        if cause is None:
            kept.append(key)
        else:
            consequences[cause].append(key)
    result = []
    for key in kept:
        problem, also = failed[key], consequences[key]
        if also:
            names = ", ".join(also)
            problem = KeyProblem(key, f"{problem.message} (so {'does' if len(also) == 1 else 'do'} {names}, which "
                                      f"depend{'s' if len(also) == 1 else ''} on it)",
                                 tuple(dict.fromkeys([*problem.flags, *(f for k in also for f in failed[k].flags)])))
        result.append(problem)
    return result


def resolve_config(cfg: DictConfig) -> tuple[dict, list[KeyProblem]]:
    """The config as plain data; an interpolation that fails is reported per key, all of them, and once:
    a key that fails only through another key's failure is named with it."""
    problems: list[KeyProblem] = []
    failed: dict[str, KeyProblem] = {}
    container = OmegaConf.to_container(cfg, resolve=False)
    raw = OmegaConf.to_container(cfg, resolve=False)
    for top, section in list(container.items()):
        keys = list(section) if isinstance(section, dict) else [None]
        for key in keys:
            path = f"{top}.{key}" if key is not None else str(top)
            # A key whose value is not written: what the parser says about its flag would only repeat this.
            flags = (f"--{key.replace('_', '-')}",) if isinstance(key, str) else ()
            try:
                value = OmegaConf.select(cfg, path, throw_on_missing=True)
                value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            except OmegaConfBaseException as err:
                failed[path] = KeyProblem(path, str(err).splitlines()[0], flags)
                value = None
            unwritable = _unwritable_text(value)
            if unwritable:
                problems.append(KeyProblem(path, unwritable, flags))
                value = None
            if key is None:
                container[top] = value
            else:
                container[top][key] = value
    return container, _one_problem_per_cause(failed, raw) + problems


def _json(value) -> str:
    """JSON with numbers spelled as a reader expects (``1e-5``, not Python's ``1e-05``)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_json(v) for v in value) + "]"
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value and abs(value) != float("inf"):
        return format_number(value)
    return json.dumps(value, ensure_ascii=False)


def _roles(roles) -> tuple[str | None, list[KeyProblem]]:
    """A roles: section as the inline value of --megatron-config-path, which keeps it in the args file."""
    if not roles:
        return None, []
    if not isinstance(roles, dict) or set(roles) - {"actor", "critic"}:
        return None, [KeyProblem("roles", "roles maps actor and/or critic to their overrides, e.g. "
                                          "roles: {critic: {lr: 1e-5}}")]
    entries = [{"name": "default", "role": role, "overrides": values or {}} for role, values in roles.items()]
    return _json(entries), []


def _entry_point(value) -> tuple[str, list[KeyProblem]]:
    if value is None:
        return DEFAULT_ENTRY_POINT, []
    if value not in ENTRY_POINTS:
        return DEFAULT_ENTRY_POINT, [KeyProblem("entry_point", f"the trainer's entry points are "
                                                               f"{' and '.join(ENTRY_POINTS)}, not {value!r}")]
    return value, []


def _env(env) -> tuple[dict[str, str], list[KeyProblem]]:
    if not env:
        return {}, []
    if not isinstance(env, dict):
        return {}, [KeyProblem("env", "env maps variable names to values, e.g. env: {NCCL_DEBUG: WARN}")]
    problems = [KeyProblem(f"env.{k}", f"{k!r} is not a valid environment variable name")
                for k in env if not _ENV_NAME.fullmatch(str(k))]
    problems += [KeyProblem(f"env.{k}", "environment values are strings or numbers")
                 for k, v in env.items() if isinstance(v, (dict, list))]
    return {str(k): "" if v is None else str(v) for k, v in env.items()}, problems


class _Explainer:
    """Turns problems into messages naming key, value and file."""

    def __init__(self, config: dict, flag_keys: dict[str, str], provenance: Callable[[], Provenance]):
        self.config, self.flag_keys, self._provenance, self._computed = config, flag_keys, provenance, None

    @property
    def provenance(self) -> Provenance:
        if self._computed is None:
            self._computed = self._provenance()
        return self._computed

    def where(self, key: str) -> str:
        value = self.config
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        source = self.provenance.source_of(key)
        if source.startswith("override "):
            return source
        shown = "" if isinstance(value, (dict, list)) or value is None else f"={value}"
        return f"{source}: {key}{shown}"

    def key_problem(self, problem: KeyProblem) -> str:
        return f"{self.where(problem.key)}: {problem.message}"

    def key_of(self, option: str) -> str | None:
        f = flag_by_option().get(option)
        for name in (f.names + f.off_names) if f else (option,):
            if name in self.flag_keys:
                return self.flag_keys[name]
        return None

    def parser_problem(self, message: str, flags: tuple[str, ...]) -> str:
        role_problem = _ROLE_PROBLEM.match(message) if self.flag_keys.get("--megatron-config-path") == "roles" else None
        if role_problem:
            role, rest = role_problem["role"], role_problem["rest"]
            key = _ROLE_KEY.match(rest) if role else None
            role = role or next((r for r in ("actor", "critic") if r in rest), None)
            config_key = ".".join(filter(None, ["roles", role, key["key"] if key else None]))
            if config_key not in self.provenance.sources:  # set as a whole: the nearest key below that was set
                config_key = next((k for k in self.provenance.sources if k.startswith(config_key)), config_key)
            return f"{self.where(config_key)}: {rest}"
        keys = [k for k in dict.fromkeys(self.key_of(option) for option in flags) if k]
        if not keys:
            return f"{message} [not set by any config: the flag's default or a derived value]"
        return f"{message} [set by {'; '.join(self.where(k) for k in keys)}]"


def generate(cfg: DictConfig, config_name: str, overrides: list[str],
             provenance: Callable[[], Provenance] | None = None) -> Generated:
    """Validated arrays of one composed config; GenerationError lists every problem."""
    if provenance is None:
        provenance = lambda: Provenance.compute(config_name, overrides)  # noqa: E731
    config, problems = resolve_config(cfg)
    problems += [KeyProblem(r.key, r.why) for r in targets(OmegaConf.to_container(cfg, resolve=False), "")]
    flat = flatten(config)
    problems += flat.problems
    roles, role_problems = _roles(config.get("roles"))
    env, env_problems = _env(config.get("env"))
    entry_point, entry_problems = _entry_point(config.get("entry_point"))
    problems += role_problems + env_problems + entry_problems
    if roles and "--megatron-config-path" in flat.flag_keys:
        problems.append(KeyProblem(flat.flag_keys["--megatron-config-path"],
                                   "set roles: or --megatron-config-path, not both"))
    explain = _Explainer(config, flat.flag_keys, provenance)
    problems += model_dir_problems(config_name, config, overrides, lambda: explain.provenance)
    messages = [explain.key_problem(p) for p in problems]
    # A flag whose value could not be written is missing from the argv: leave out what the parser
    # then says about that flag, which would only repeat the problem in a misleading way.
    unwritten = {flag for p in problems for flag in p.flags}
    if roles:
        flat.arrays["MISC_ARGS"].append(["--megatron-config-path", roles])
        flat.flag_keys["--megatron-config-path"] = "roles"
    try:
        namespace = parse_args(argv_of(flat.arrays))
    except ArgumentProblems as err:
        messages += [explain.parser_problem(p.message, p.flags) for p in err.problems
                     if not unwritten & set(p.flags)]
        if not messages:  # every parser problem followed from one already reported
            messages = [explain.key_problem(p) for p in problems]
    else:
        messages += [f"{explain.parser_problem(p.message, p.flags)} [entry point: {explain.where('entry_point')}]"
                     for p in entry_point_problems(namespace, entry_point)]
        messages += [explain.key_problem(p) for p in model_type_problems(config, namespace)]
    if messages:
        raise GenerationError(config_name, messages)
    return Generated(config_name, list(overrides), flat.arrays, namespace, roles, env, entry_point, explain)
