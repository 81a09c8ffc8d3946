"""Which file set each config key: the defaults list, walked in merge order, then the overrides.

Hydra merges the configs of the defaults list in order, then applies command-line overrides;
the last source to set a key is the one whose value the run gets.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def _leaves(node, prefix: str):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from _leaves(value, path)


class Provenance:
    """``source_of("rollout.global_batch_size")`` → ``conf/rollout/dapo_math.yaml`` (or the override)."""

    def __init__(self, sources: dict[str, str]):
        self.sources = sources

    @classmethod
    def compute(cls, conf_dir: Path, config_name: str, overrides: list[str]) -> "Provenance":
        from hydra.core.global_hydra import GlobalHydra
        from hydra.types import RunMode

        loader = GlobalHydra.instance().config_loader()
        defaults = loader.compute_defaults_list(config_name, list(overrides), RunMode.RUN)
        sources: dict[str, str] = {}
        for default in defaults.defaults:
            path = default.config_path or ""
            if not path or path.startswith("hydra/"):
                continue
            file = conf_dir / f"{path}.yaml"
            if not file.exists():
                continue
            node = yaml.safe_load(file.read_text()) or {}
            node.pop("defaults", None)
            shown = f"conf/{path}.yaml"
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
        return "not set in any config (the flag's default)"
