"""The checkpoint folder follows the model: ``run.model_dir`` comes from the chosen ``conf/model`` file.

Each model file names its checkpoints' folder (``run.model_dir``), so ``model=qwen3-8B`` on
``run_qwen3_4B`` builds Qwen3-8B's paths through ``conf/ckpt/base_folder.yaml``. A primary config
may name another checkpoint of its model's architecture (``run_deepseek_r1`` runs DeepSeek-R1 on
``model: deepseek-v3``); that choice belongs to its own model, so when the command line picks
another model while a config file still names the folder, the paths would silently keep the old
checkpoint: that is an error until ``run.model_dir`` is given on the command line too.

A model file also says its checkpoints' HF ``model_type`` (``run.model_type``): a model the megatron
backend cannot map is an error of the config, not of the run's first minutes on the cluster.
"""

from __future__ import annotations

from collections.abc import Callable

from slime.config.flatten import KeyProblem
from slime.config.model_files import model_dir
from slime.config.provenance import Provenance
from slime.utils.checkout import CONF_DIR

KEY = "run.model_dir"


def chosen_model(overrides: list[str]) -> str | None:
    """The ``model=NAME`` option chosen on the command line, if any."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for override in OverridesParser.create().parse_overrides(list(overrides)):
        if override.key_or_group == "model" and not override.is_delete():
            return str(override.value())
    return None


def own_model(config_name: str) -> str | None:
    """The model option a primary config chooses itself (needs Hydra initialised)."""
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    defaults = GlobalHydra.instance().config_loader().compute_defaults_list(config_name, [], RunMode.RUN)
    return next((d.config_path.split("/", 1)[1] for d in defaults.defaults
                 if (d.config_path or "").startswith("model/")), None)


def model_dir_problems(config_name: str, config: dict, overrides: list[str],
                       provenance: Callable[[], Provenance]) -> list[KeyProblem]:
    """A ``run.model_dir`` set by a config file for its own model while the command line chose another."""
    if not any(o.lstrip("+~").split("=", 1)[0] == "model" for o in overrides):
        return []
    choice = chosen_model(overrides)
    if choice is None or provenance().source_of(KEY).startswith(("override ", "conf/model/", "not set")):
        return []
    if choice == own_model(config_name):
        return []
    path = CONF_DIR / "model" / f"{choice}.yaml"
    default = model_dir(path) if path.is_file() else None
    current = (config.get("run") or {}).get("model_dir")
    fix = f"run.model_dir={default}" if default else "run.model_dir=FOLDER"
    return [KeyProblem(KEY, f"names the checkpoint of the config's own model, but model={choice} is chosen on the "
                            f"command line, so the checkpoint paths would still lead to {current}: add {fix} to the "
                            f"overrides" + (f" (the folder conf/model/{choice}.yaml names)" if default else ""))]


def model_type_problems(config: dict, args) -> list[KeyProblem]:
    """A model whose checkpoints the megatron backend cannot map, named by its file before the cluster: the
    model file says its checkpoints' HF ``model_type`` (``run.model_type``)."""
    from slime.model.hf_config import FAMILIES

    model_type = (config.get("run") or {}).get("model_type")
    if model_type is None or model_type in FAMILIES or args.train_backend != "megatron" or args.debug_rollout_only:
        return []
    return [KeyProblem("run.model_type", f"the megatron backend has no HF ↔ megatron weight mapping for {model_type} "
                                         f"checkpoints (it maps {', '.join(FAMILIES)}): train this model elsewhere, "
                                         "or add its mapping (slime/backends/megatron/hf_mapping.py) with a tiny "
                                         "model that tests it (tools/make_tiny_model.py)")]
