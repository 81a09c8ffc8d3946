"""A captured train.py argv turned into config groups: which array each token came from, then one
``key: value`` per flag, by the flag's kind (the inverse of ``slime.config.flatten``)."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from slime.config.flatten import ARRAY_GROUPS
from slime.config.shell import SHELL_REF, expand, referenced_names
from slime.arguments.parser import looks_like_option
from slime.arguments.registry import flag_by_option
from slime.arguments.flags import APPEND, CONST, NEGATABLE, SWITCH
from slime.arguments.slime_flags import CLUSTER

# Array names of existing launchers and the config group each one becomes.
ARRAY_TO_GROUP = {
    **{f"{group.upper()}_ARGS": group for group in ARRAY_GROUPS},
    "DISTRIBUTED_ARGS": "perf", "TRAIN_ARGS": "perf", "PPO_ARGS": "grpo", "ALGO_ARGS": "grpo",
    "ALGORITHM_ARGS": "grpo", "CRITIC_ARGS": "grpo", "DATA_ARGS": "rollout", "LOG_ARGS": "wandb",
    "LOGGING_ARGS": "wandb", "RAY_ARGS": "cluster", "SPEC_ARGS": "sglang", "DEBUG_ARGS": "misc",
    "SFT_ARGS": "rollout",
}


class RawNumber(str):
    """A number to be written as the launcher spelled it (``1e-6``, ``0.00``)."""


@dataclass(frozen=True)
class ModelOverride:
    """A model flag that another array, later on train.py's command line, sets to another value."""

    option: str
    value: object
    source: str  # the array that gives it (MISC_ARGS), or "train.py's command line" for an inline flag
    model_value: object  # what MODEL_ARGS says


@dataclass
class Converted:
    groups: dict[str, dict[str, object]] = field(default_factory=dict)  # group → key → YAML value
    model_tokens: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resolved: dict[str, str] = field(default_factory=dict)  # a typed flag's reference → the default it holds
    # model key → the value a later array gives it over MODEL_ARGS's (argparse keeps the last), and where
    model_overrides: dict[str, ModelOverride] = field(default_factory=dict)

    def argv(self, captured: list[str]) -> list[str]:
        """The captured argv as the config holds it: typed flags' references resolved to their defaults."""
        return [self.resolved.get(token, token) for token in captured]


def group_of_array(name: str) -> str | None:
    if name in ARRAY_TO_GROUP:
        return ARRAY_TO_GROUP[name]
    return "misc" if name.endswith("_ARGS") else None


def segments(argv: list[str], arrays: dict[str, list[str]]) -> list[tuple[str | None, list[str]]]:
    """Split the argv into the arrays it was expanded from, by matching their contents in place;
    tokens no array explains are inline flags (array None)."""
    candidates = sorted(((name, values) for name, values in arrays.items() if values and group_of_array(name)),
                        key=lambda item: -len(item[1]))
    found: list[tuple[str | None, list[str]]] = []
    i = 0
    while i < len(argv):
        for name, values in candidates:
            if argv[i:i + len(values)] == values:
                found.append((name, values))
                i += len(values)
                break
        else:
            if found and found[-1][0] is None:
                found[-1][1].append(argv[i])
            else:
                found.append((None, [argv[i]]))
            i += 1
    return found


def flag_chunks(tokens: list[str], problems: list[str]) -> list[tuple[str, list[str]]]:
    """``[(option, values)]``: each flag with the values that follow it (``--x=v`` split)."""
    chunks: list[tuple[str, list[str]]] = []
    for token in tokens:
        if looks_like_option(token):
            option, sep, value = token.partition("=")
            chunks.append((option, [value] if sep else []))
        elif chunks:
            chunks[-1][1].append(token)
        else:
            problems.append(f"value {token!r} before any flag")
    return chunks


def _suggest(option: str) -> str:
    close = difflib.get_close_matches(option, flag_by_option().keys(), n=1, cutoff=0.7)
    return f" (closest known flag: {close[0]})" if close else " (no similar flag: see docs/arguments.md)"


def _scalar(text: str, type_name: str):
    if type_name == "int":
        try:
            return int(text)
        except ValueError:
            return text
    if type_name == "float":
        try:
            float(text)
        except ValueError:
            return text
        return RawNumber(text)
    return text


def key_and_value(option: str, values: list[str]):
    """The config key and YAML value of one flag occurrence; ValueError names the problem."""
    f = flag_by_option().get(option)
    if f is None:
        raise ValueError(f"unknown flag {option}{_suggest(option)}")
    positive = option if option in f.names else f.names[f.off_names.index(option)]
    key = positive[2:].replace("-", "_")
    if f.kind in (SWITCH, NEGATABLE) or (f.kind == CONST and f.nargs == 0):
        if values:
            raise ValueError(f"{option} takes no value, got {' '.join(values)}")
        return key, option in f.names
    if not values:
        raise ValueError(f"{option} needs a value")
    base = f.type_name.removeprefix("list[").rstrip("]")
    if f.is_list:
        return key, [_scalar(v, base) for v in values]
    if len(values) > 1:
        raise ValueError(f"{option} takes one value, got {' '.join(values)}")
    return key, _scalar(values[0], base)


def resolve_typed_references(option: str, values: list[str], out: Converted) -> list[str]:
    """A value a number or choice flag takes cannot stay a shell reference (the generator checks the value):
    one with the script's default becomes that default, with a note; one without is a problem."""
    f = flag_by_option().get(option)
    if f is None or (f.type_name.removeprefix("list[").rstrip("]") == "str" and not f.choices):
        return values
    resolved = []
    for value in values:
        if not SHELL_REF.search(value):
            resolved.append(value)
            continue
        required = referenced_names([value])
        if required:
            raise ValueError(f"{option} {value}: a flag of type {f.type_name} cannot refer to a shell variable in a config; "
                             f"give {', '.join(required)} with --set NAME=VALUE")
        resolved.append(expand(value, {}))
        out.resolved[value] = resolved[-1]
        out.notes.append(f"{option} {value}: a flag of type {f.type_name} cannot refer to a shell variable, so the config "
                         f"holds the script's default, {resolved[-1]}")
    return resolved


def convert(argv: list[str], arrays: dict[str, list[str]]) -> Converted:
    """Group the argv's flags by the arrays they came from; inline flags go to cluster (placement
    flags) or misc. A flag given twice keeps argparse's last value."""
    out = Converted()
    placed: dict[str, tuple[str, str]] = {}  # flag → (group, key) where its value is kept
    for array, tokens in segments(argv, arrays):
        for option, values in flag_chunks(tokens, out.problems):
            try:
                values = resolve_typed_references(option, values, out)
                key, value = key_and_value(option, values)
            except ValueError as err:
                out.problems.append(str(err))
                continue
            f = flag_by_option()[option]
            group = group_of_array(array) if array else ("cluster" if f.group == CLUSTER else "misc")
            if array == "MODEL_ARGS":
                out.model_tokens += [option, *values]
            previous = placed.get(f.name)
            if previous and f.kind == APPEND:  # every occurrence adds to the list, as argparse's append does
                out.groups[previous[0]][previous[1]] = [*out.groups[previous[0]][previous[1]], *value]
                continue
            if previous and previous[0] == "model" and array != "MODEL_ARGS":
                _override_model(out, option, key, value, array)
                continue
            if previous:
                if out.groups[previous[0]].get(previous[1]) == value:
                    continue  # the same value again: keep it where it first appeared
                out.groups[previous[0]].pop(previous[1], None)
                out.notes.append(f"{option} is given more than once with different values; the config keeps "
                                 "the last, as argparse did")
            out.groups.setdefault(group, {})[key] = value
            placed[f.name] = (group, key)
    return out


def _override_model(out: Converted, option: str, key: str, value, array: str | None) -> None:
    """A model flag given again after MODEL_ARGS: the model file keeps MODEL_ARGS's value (it is matched on
    MODEL_ARGS) and the config overrides it, unless the later value is the same."""
    model_value = out.groups["model"][key]
    if value == model_value:
        out.model_overrides.pop(key, None)
    else:
        out.model_overrides[key] = ModelOverride(option, value, array or "train.py's command line", model_value)
