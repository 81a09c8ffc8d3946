"""conf/model/*.yaml read quickly and turned into MODEL_ARGS tokens.

A model file is a ``# @package _global_`` option: its ``model:`` section holds the Megatron flags
(MODEL_ARGS) and its ``run.model_dir`` the folder name of its checkpoints, which
``conf/ckpt/base_folder.yaml`` builds the paths from (docs/hydra.md, "Choosing a model"). Model
files hold no interpolations, so they are read with the C YAML loader plus OmegaConf's implicit
types (``1e-6`` is a float, as Hydra reads it) instead of Hydra's slower loader; duplicate keys are
refused.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf._utils import get_yaml_loader

from slime.config.flatten import Flattened, flatten


class _ModelYamlLoader(yaml.CSafeLoader):
    yaml_implicit_resolvers = get_yaml_loader().yaml_implicit_resolvers

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=True) for key, _ in node.value]
        duplicates = sorted({str(k) for k in keys if keys.count(k) > 1})
        if duplicates:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key(s) {', '.join(duplicates)}",
                                                    node.start_mark)
        return super().construct_mapping(node, deep=deep)


def load_model_file(path: Path) -> dict:
    """A model file as plain data: ``{"run": {"model_dir": …}, "model": {flag: value, …}}``."""
    return yaml.load(path.read_text(), Loader=_ModelYamlLoader) or {}


def load_model_entries(path: Path) -> dict:
    """The flag keys and values of one model file (its ``model:`` section)."""
    return load_model_file(path).get("model") or {}


def model_dir(path: Path) -> str | None:
    """The checkpoint folder name a model file gives its runs (``run.model_dir``), if any."""
    return (load_model_file(path).get("run") or {}).get("model_dir")


def flatten_model(entries: dict) -> Flattened:
    """Model entries as the MODEL_ARGS array (with any problems found)."""
    return flatten({"model": entries})


def model_argv(entries: dict) -> list[str]:
    return [token for line in flatten_model(entries).arrays["MODEL_ARGS"] for token in line]
