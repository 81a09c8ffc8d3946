"""Which file set each config key: the defaults list, walked in merge order, then the overrides.

Hydra merges the configs of the defaults list in order, then applies command-line overrides;
the last source to set a key is the one whose value the run gets.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from slime.utils.checkout import ROOT


def _leaves(node, prefix: str):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _leaves(value, path)


def display_path(source: str, config_path: str) -> str:
    """``file:///repo/conf`` + ``rollout/dapo_math`` → ``conf/rollout/dapo_math.yaml`` (absolute outside the repo)."""
    if not source.startswith("file://"):
        return f"{source}/{config_path}.yaml"
    file = Path(source[len("file://"):]).absolute() / f"{config_path}.yaml"  # a relative search path: from here
    return str(file.relative_to(ROOT)) if file.is_relative_to(ROOT) else str(file)


def _loaded_defaults(config_name: str, overrides: list[str], hydra_groups: bool = False):
    """The defaults list of a composition: (its computed list, [(default, loaded config)]) in merge
    order, Hydra's own configs left out (with ``hydra_groups``, the ``hydra/`` group configs read from
    the config folders are kept). Needs Hydra initialised."""
    from hydra._internal.defaults_list import create_defaults_list
    from hydra.core.global_hydra import GlobalHydra

    # What the loader's compute_defaults_list does, keeping its repository: that one has the search
    # path the composition used (with a hydra.searchpath, an override among ``overrides`` or the
    # primary config's own, not the loader's base repository), and it has already read each file.
    loader = GlobalHydra.instance().config_loader()
    parsed, repository = loader._parse_overrides_and_create_caching_repo(config_name, list(overrides))
    defaults = create_defaults_list(repo=repository, config_name=config_name, overrides_list=parsed,
                                    prepend_hydra=True, skip_missing=False)
    loaded = []
    for default in defaults.defaults:
        path = default.config_path or ""
        if not path or (path.startswith("hydra/") and not hydra_groups):
            continue
        config = repository.load_config(path)
        if config is not None and (not path.startswith("hydra/") or config.path.startswith("file://")):
            loaded.append((default, config))
    return defaults, loaded


def config_files(config_name: str, overrides: list[str]) -> list[Path]:
    """The config files on disk that a composition reads (the primary config and its defaults)."""
    _, loaded = _loaded_defaults(config_name, overrides)
    return [Path(config.path[len("file://"):]).absolute() / f"{default.config_path}.yaml"
            for default, config in loaded if config.path.startswith("file://")]


class Provenance:
    """``source_of("rollout.global_batch_size")`` → ``conf/rollout/dapo_math.yaml`` (or the override)."""

    def __init__(self, sources: dict[str, str]):
        self.sources = sources

    @classmethod
    def compute(cls, config_name: str, overrides: list[str]) -> "Provenance":
        """Needs Hydra initialised (inside @hydra.main or a Compose API context)."""
        from omegaconf import OmegaConf

        defaults, loaded_defaults = _loaded_defaults(config_name, overrides)
        sources: dict[str, str] = {}
        for default, loaded in loaded_defaults:
            node = OmegaConf.to_container(loaded.config, resolve=False)
            node.pop("defaults", None)
            shown = display_path(loaded.path, default.config_path)
            for key in _leaves(node, default.package or ""):
                sources[key] = shown
        for override in defaults.overrides.config_overrides:
            shown = f"override {override.input_line}"
            sources[override.key_or_group] = shown
            for key in _leaves(override.value(), override.key_or_group):
                sources[key] = shown
        return cls(sources)

    def source_of(self, key: str) -> str:
        """The file (or override) that set ``key``, or that set the nearest enclosing key."""
        probe = key
        while probe:
            if probe in self.sources:
                return self.sources[probe]
            probe = probe.rpartition(".")[0]
        # a key only its children were set under (++optimzer.lr=1 makes optimzer): where they were set
        return next((source for child, source in self.sources.items() if child.startswith(key + ".")),
                    "not set in any config (the flag's default)")


def setting_source(config_name: str, overrides: list[str]) -> Callable[[str], str]:
    """``source("hydra.callbacks.x._target_")``: the override or file that set a key (or a key below it),
    or that chose the config group it lies in (a ``hydra/job_logging=…`` override, an ``override
    /hydra/job_logging: …`` line of a defaults list). Needs Hydra initialised."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    defaults, loaded = _loaded_defaults(config_name, overrides, hydra_groups=True)
    shown = {default.config_path: display_path(config.path, default.config_path) for default, config in loaded}
    files: dict[str, str] = {}
    for default, config in loaded:
        from omegaconf import OmegaConf

        node = OmegaConf.to_container(config.config, resolve=False)
        node.pop("defaults", None)
        for key in _leaves(node, default.package or ""):
            files[key] = shown[default.config_path]
    choices = {group.replace("/", "."): (f"override {group}={defaults.overrides.override_choices.get(group)}"
                                         if meta.external_override else
                                         shown.get(meta.containing_config_path, f"{meta.containing_config_path}.yaml"))
               for group, meta in defaults.overrides.override_metadata.items()}
    typed = []
    for line in overrides:
        try:
            typed.append((OverridesParser.create().parse_override(line).key_or_group.replace("/", "."), line))
        except Exception:  # noqa: BLE001 - Hydra composed these already; nothing to skip in practice
            continue

    def related(key: str, other: str) -> bool:
        return key == other or key.startswith(other + ".") or other.startswith(key + ".")

    def source(key: str) -> str:
        line = next((line for other, line in reversed(typed) if related(key, other)), None)
        if line is not None:
            return f"override {line}"
        file = next((files[k] for k in reversed(list(files)) if k == key or k.startswith(key + ".")), None)
        if file is not None:
            return file
        chosen = next((where for group, where in choices.items() if key.startswith(group + ".") or key == group), None)
        return chosen or "Hydra's own defaults"
    return source
