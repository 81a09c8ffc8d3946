"""What a config may ask of Hydra: to compose it, and nothing more.

Some of Hydra's own settings make it run code or write files before the generator's task runs:
callbacks (``hydra.callbacks.<name>._target_``, any callable), launcher and sweeper plugins, the
handlers, formatters and filters of ``hydra.job_logging``/``hydra.hydra_logging`` (any class, any
file, ``ext://`` imports), ``hydra.output_subdir`` (copies of the config written beside the run),
``hydra.run.dir``/``hydra.sweep.dir`` (folders created anywhere) and ``hydra.job.env_set`` (the
environment of every command the generator runs, ``git`` included). A ``_target_`` anywhere else is
what ``hydra.utils.instantiate`` would call. ``problems`` finds every such setting in a composed
config, whether a YAML file or an override set it; the generator and every Compose API entry point
refuse the config, naming the file or override, before Hydra acts on it.

Every field of Hydra's schema (``hydra.conf.HydraConf``, walked recursively) has a rule in
``RULES``; a key the rules do not know (one a later Hydra adds) is refused until it is classified.
``install_baseline`` makes the generator's own Hydra settings (no log files, no ``.hydra/`` copies,
the run folder ``.``) Hydra's defaults, so that a config that does not start from
``conf/generator.yaml`` is safe too.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
CONSOLE_STREAMS = ("ext://sys.stdout", "ext://sys.stderr")
# What a dictConfig may hold when it writes to the console only (logging.config's schema).
_LOGGING_KEYS = {"version", "formatters", "filters", "handlers", "loggers", "root", "disable_existing_loggers",
                 "incremental"}
_FORMATTER_KEYS = {"format", "datefmt", "style", "validate", "defaults"}
_FILTER_KEYS = {"name"}
_HANDLER_KEYS = {"class", "level", "formatter", "filters", "stream"}
_LOGGER_KEYS = {"level", "handlers", "propagate", "filters"}
# Interpolations a sweep's job folder may use: each gives a name inside the sweep folder.
_SUBDIR_INTERPOLATIONS = ("${hydra.job.num}", "${hydra.job.id}", "${hydra.job.override_dirname}")


@dataclass(frozen=True)
class Refusal:
    """One setting Hydra must not be given: its dotted key, its value as written, and why."""

    key: str
    value: object
    why: str


def allowed_folders() -> list[Path]:
    """Where Hydra may create run and sweep folders: below the current folder or the temporary folder."""
    return [Path.cwd().resolve(), Path(tempfile.gettempdir()).resolve()]


def _inside_allowed(folder: str) -> bool:
    path = Path(os.path.abspath(os.path.expanduser(folder)))
    resolved = path.resolve()
    return any(resolved == root or root in resolved.parents for root in allowed_folders())


def _shown(value) -> str:
    return "null" if value is None else str(value)


# -- the rules: each takes (key, value, resolve) and yields Refusals ----------------------------------
Rule = Callable[[str, object, Callable[[str], object]], Iterator[Refusal]]


def free(key, value, resolve):
    """Text, flags and Hydra's own records of the run: nothing is run or written from them."""
    return iter(())


def empty(why: str) -> Rule:
    def rule(key, value, resolve):
        if value:
            yield Refusal(key, value, why)
    return rule


def null(why: str) -> Rule:
    def rule(key, value, resolve):
        if value is not None:
            yield Refusal(key, value, why)
    return rule


def folder(what: str) -> Rule:
    def rule(key, value, resolve):
        try:
            resolved = resolve(key)
        except Exception as err:  # noqa: BLE001 - an interpolation Hydra only resolves later: where is unknown
            yield Refusal(key, value, f"{what}, and where it points cannot be told before Hydra runs "
                                      f"({str(err).splitlines()[0]})")
            return
        if not isinstance(resolved, str) or not _inside_allowed(resolved):
            yield Refusal(key, value, f"{what} {resolved!r}, outside the folders Hydra may write to here (the current "
                                      f"folder and the temporary folder {tempfile.gettempdir()}, and below)")
    return rule


def sweep_subdir(key, value, resolve):
    text = str(value) if value is not None else ""
    for allowed in _SUBDIR_INTERPOLATIONS:
        text = text.replace(allowed, "x")
    parts = Path(text).parts
    if "${" in text or text.startswith(("/", "~")) or ".." in parts or not parts:
        yield Refusal(key, value, "a job's folder must be a relative name inside the sweep folder (literal text, "
                                  f"{', '.join(_SUBDIR_INTERPOLATIONS)}), without '..'")


def callbacks(key, value, resolve):
    for name, callback in (value or {}).items():
        target = callback.get("_target_") if isinstance(callback, dict) else None
        yield Refusal(f"{key}.{name}" + ("._target_" if target else ""), target or callback,
                      "Hydra instantiates every callback (any callable its _target_ names, with the arguments beside "
                      "it) before the generator's task runs; a config here never runs code")


def plugin(target: str, keys: set[str], what: str) -> Rule:
    def rule(key, value, resolve):
        if not isinstance(value, dict) or value.get("_target_") != target:
            shown = value.get("_target_") if isinstance(value, dict) else value
            yield Refusal(f"{key}._target_" if isinstance(value, dict) else key, shown,
                          f"Hydra would instantiate this {what} plugin and hand it the run; only Hydra's basic "
                          f"{what} ({target}) runs here")
            return
        for extra in sorted(set(value) - keys):
            yield Refusal(f"{key}.{extra}", value[extra], f"not a setting of Hydra's basic {what}")
        for param in (value.get("params") or {}) if "params" in keys else {}:
            if _hydra_override_key(str(param)) or "_target_" in str(param):
                yield Refusal(f"{key}.params.{param}", value["params"][param],
                              "a sweep parameter on Hydra's own settings (or a _target_): each job would get it")
    return rule


def _hydra_override_key(key: str) -> bool:
    key = key.lstrip("+~")
    return key == "hydra" or key.startswith(("hydra.", "hydra/"))


def logging_config(key, value, resolve):
    """A logging dictConfig that only writes to the console: StreamHandlers on stdout or stderr, no
    factories (``()``), no classes but those, no ``ext://`` or ``cfg://`` lookups elsewhere."""
    if value is None:
        return
    if not isinstance(value, dict):
        yield Refusal(key, value, "a logging configuration is a mapping (Python's logging.config schema)")
        return
    yield from _unknown_keys(key, value, _LOGGING_KEYS)
    for name, formatter in (value.get("formatters") or {}).items():
        yield from _unknown_keys(f"{key}.formatters.{name}", formatter, _FORMATTER_KEYS)
    for name, one in (value.get("filters") or {}).items():
        yield from _unknown_keys(f"{key}.filters.{name}", one, _FILTER_KEYS)
    for name, handler in (value.get("handlers") or {}).items():
        where = f"{key}.handlers.{name}"
        if not isinstance(handler, dict):
            yield Refusal(where, handler, "a handler is a mapping with class: logging.StreamHandler")
            continue
        if handler.get("class") != "logging.StreamHandler":
            target = f" (it would open {handler['filename']})" if handler.get("filename") else ""
            yield Refusal(f"{where}.class", handler.get("class"),
                          f"logging would create this handler{target}: a file handler writes, truncates or rotates "
                          "files; Hydra's logging here writes to the console only: class: logging.StreamHandler")
            continue
        yield from _unknown_keys(where, handler, _HANDLER_KEYS)
        if handler.get("stream", CONSOLE_STREAMS[1]) not in CONSOLE_STREAMS:
            yield Refusal(f"{where}.stream", handler.get("stream"),
                          f"a console handler writes to {' or '.join(CONSOLE_STREAMS)}")
    for name, logger in (value.get("loggers") or {}).items():
        yield from _unknown_keys(f"{key}.loggers.{name}", logger, _LOGGER_KEYS)
    if value.get("root") is not None:
        yield from _unknown_keys(f"{key}.root", value["root"], _LOGGER_KEYS - {"propagate"})
    for where, text in _strings(key, value):
        if text.startswith(("ext://", "cfg://")) and not (where.endswith(".stream") and text in CONSOLE_STREAMS):
            yield Refusal(where, text, "logging.config imports what an ext:// value names (and follows cfg:// ones); "
                                       "only a handler's stream may be ext://sys.stdout or ext://sys.stderr")


def _unknown_keys(key: str, value, allowed: set[str]) -> Iterator[Refusal]:
    if not isinstance(value, dict):
        return
    for extra in sorted(set(map(str, value)) - allowed):
        why = ("logging.config calls the factory a '()' key names" if extra == "()" else
               f"not one of {', '.join(sorted(allowed))}: what logging.config would make of it is not known here")
        yield Refusal(f"{key}.{extra}", value[extra], why)


def _strings(key: str, value) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(f"{key}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(f"{key}.{i}", v)
    elif isinstance(value, str):
        yield key, value


_OUTPUT_SUBDIR = ("Hydra would write copies of the config (config.yaml, hydra.yaml, overrides.yaml) into this folder "
                  "of every run; the args file's header records the command line instead: leave it null")
_ENV = "Hydra would set these variables for the generator and every command it runs (git among them)"

# Every field of hydra.conf.HydraConf, by dotted path below ``hydra``: the rule its value must pass.
RULES: dict[str, Rule] = {
    "defaults": free,  # Hydra's own defaults list, consumed by composition
    "mode": free,
    "env": free,  # the hydra/env group's own package: Hydra reads nothing there (its settings elsewhere are checked)
    "searchpath": free,  # every config file there is checked before Hydra reads one (slime.config.sources)
    "run.dir": folder("Hydra creates the run folder"),
    "sweep.dir": folder("Hydra and the generator write the sweep into"),
    "sweep.subdir": sweep_subdir,
    "hydra_logging": logging_config,
    "job_logging": logging_config,
    "sweeper": plugin(BASIC_SWEEPER, {"_target_", "max_batch_size", "params"}, "sweeper"),
    "launcher": plugin(BASIC_LAUNCHER, {"_target_"}, "launcher"),
    "callbacks": callbacks,
    "help": free,
    "hydra_help": free,
    "output_subdir": null(_OUTPUT_SUBDIR),
    "overrides": free,  # Hydra's record of the command line
    "job.name": free,
    "job.chdir": free,  # into the run folder, which run.dir's rule checks
    "job.override_dirname": free,
    "job.id": free,
    "job.num": free,
    "job.config_name": free,
    "job.env_set": empty(_ENV),
    "job.env_copy": empty(_ENV),
    "job.config": free,  # how ${hydra.job.override_dirname} is spelled
    "runtime": free,  # filled by Hydra as it runs
    "verbose": free,
}


def rule_of(path: str) -> Rule | None:
    """The rule for a dotted path below ``hydra`` (its own, or its nearest enclosing key's)."""
    probe = path
    while probe:
        if probe in RULES:
            return RULES[probe]
        probe = probe.rpartition(".")[0]
    return None


def _settings(hydra: dict, prefix: str = "") -> Iterator[tuple[str, object]]:
    """(path, value) of every setting of a hydra node at the depth its rules are written for."""
    for key, value in hydra.items():
        path = f"{prefix}{key}"
        if path in RULES or not isinstance(value, dict) or not any(r.startswith(path + ".") for r in RULES):
            yield path, value
        else:
            yield from _settings(value, path + ".")


def targets(node, prefix: str) -> Iterator[Refusal]:
    """Every ``_target_`` key in a config: what ``hydra.utils.instantiate`` would import and call."""
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_target_":
                yield Refusal(path, value, "a _target_ names a callable that Hydra's instantiate would import and "
                                           "call; a config here only holds values")
            else:
                yield from targets(value, path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from targets(value, f"{prefix}.{i}")


# Hydra instantiates what these hold: their rules judge their _target_.
_INSTANTIATED = ("callbacks", "launcher", "sweeper")


def problems(hydra: dict, job: dict, resolve: Callable[[str], object]) -> list[Refusal]:
    """Every setting of a composed config that would make Hydra run or write something: ``hydra`` its
    Hydra node (unresolved), ``job`` the rest, ``resolve(dotted key)`` a value resolved as Hydra will."""
    def under_hydra(refusal: Refusal) -> Refusal:
        return Refusal(f"hydra.{refusal.key}", refusal.value, refusal.why)

    found = list(targets(job, ""))
    for path, value in _settings(hydra):
        rule = rule_of(path)
        if rule is None:
            found.append(Refusal(f"hydra.{path}", value, "a setting of Hydra's that the generator does not know, so "
                                                        "it cannot tell what Hydra would do with it"))
            continue
        found.extend(under_hydra(r) for r in rule(path, value, lambda key: resolve(f"hydra.{key}")))
        if path not in _INSTANTIATED:
            found.extend(under_hydra(r) for r in targets(value, path))
    return _unique(found)


def _unique(found: list[Refusal]) -> list[Refusal]:
    seen, kept = set(), []
    for refusal in found:
        if refusal.key not in seen:
            seen.add(refusal.key)
            kept.append(refusal)
    return kept


def sweep_problems(overrides: list[str]) -> list[tuple[str, str]]:
    """(override, why) for each sweep over Hydra's own settings: each job would be set up differently,
    after the settings were checked."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    found = []
    for typed in overrides:
        try:
            parsed = parser.parse_override(typed)
        except Exception:  # noqa: BLE001 - Hydra reports a malformed override in its own words
            continue
        if parsed.is_sweep_override() and _hydra_override_key(parsed.key_or_group):
            found.append((typed, "Hydra's own settings are not swept: each job would get settings checked for none"))
    return found


# Warnings and errors on stderr (stdout is the args file), no file, and the loggers that libraries and
# plugins made before Hydra configured logging keep working (Hydra's "disabled" option disables them).
QUIET_LOGGING = {
    "version": 1,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["console"]},
    "disable_existing_loggers": False,
}


def install_baseline() -> None:
    """Make the generator's Hydra settings Hydra's defaults for every config composed in this process:
    warnings on stderr only (existing loggers kept), no ``.hydra/`` copies, the run folder ``.`` (a sweep's stays Hydra's
    ``multirun/<date>/<time>``). A config may still choose otherwise, within ``RULES``."""
    from hydra.conf import HydraConf
    from hydra.core.config_store import ConfigStore

    store = ConfigStore.instance()
    store.store(group="hydra/output", name="slime", package="hydra", provider="slime",
                node={"run": {"dir": "."}, "sweep": {"dir": "multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}",
                                                     "subdir": "${hydra.job.num}"}})
    for group in ("hydra_logging", "job_logging"):
        store.store(group=f"hydra/{group}", name="slime", package=f"hydra.{group}", provider="slime",
                    node=QUIET_LOGGING)
    defaults = [{**entry} for entry in HydraConf().defaults]
    chosen = {"output": "slime", "hydra_logging": "slime", "job_logging": "slime"}
    defaults = [{group: chosen.get(group, option) for group, option in entry.items()} for entry in defaults]
    store.store(group="hydra", name="config", provider="hydra", node=HydraConf(defaults=defaults, output_subdir=None))


def refused(cfg, config_name: str, overrides: list[str]) -> list[str]:
    """The generator's messages for every refused setting of ``cfg`` (composed with its ``hydra`` node,
    Hydra initialised on its search path), each naming the file or override that set it."""
    from omegaconf import OmegaConf

    from slime.config.provenance import setting_source

    container = OmegaConf.to_container(cfg, resolve=False)
    hydra = container.pop("hydra", None) or {}
    found = problems(hydra, container, lambda key: OmegaConf.select(cfg, key, throw_on_missing=True))
    messages = [f"override {typed}: {why}" for typed, why in sweep_problems(overrides)]
    if not found:
        return messages
    source = setting_source(config_name, overrides)
    for refusal in found:
        where = source(refusal.key)
        shown = "" if isinstance(refusal.value, (dict, list)) else f"={_shown(refusal.value)}"
        messages.append(f"{where}: {refusal.key}{shown}: {refusal.why}")
    return messages
