"""Which file set each config key: the defaults list, walked in merge order, then the overrides.

Hydra merges the configs of the defaults list in order, then applies command-line overrides;
the last source to set a key is the one whose value the run gets.
"""

from __future__ import annotations

from pathlib import Path


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
    root = Path(__file__).resolve().parents[2]
    return str(file.relative_to(root)) if file.is_relative_to(root) else str(file)


def _loaded_defaults(config_name: str, overrides: list[str]):
    """The defaults list of a composition: (its computed list, [(default, loaded config)]) in merge
    order, Hydra's own configs left out. Needs Hydra initialised."""
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
        if not path or path.startswith("hydra/"):
            continue
        config = repository.load_config(path)
        if config is not None:
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
