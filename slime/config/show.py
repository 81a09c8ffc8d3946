"""What the generator prints instead of the arrays: the composed config with every interpolation resolved
(``--cfg job|hydra|all --resolve``, ``resolved_config``), and every key beside the file that set it
(``--provenance``, ``--which``: ``provenance_text``)."""

from __future__ import annotations

import yaml

from slime.config.flatten import KeyProblem
from slime.config.generate import GenerationError, resolve_config
from slime.config.provenance import Provenance


def resolved_config(name: str, cfg, part: str, package: str | None) -> tuple[str, GenerationError | None]:
    """``--cfg job|hydra|all --resolve [--package KEY]``: the composed config with every interpolation
    resolved, as YAML, or the error naming each problem per key; a shell reference (``\\${BASE_FOLDER}``)
    is shown as what it is, ``${BASE_FOLDER}``, which Hydra's own printing would try to resolve again and
    fail on."""
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    config, problems = resolve_config(cfg) if part in ("job", "all") else ({}, [])
    if part in ("hydra", "all"):
        # Hydra's settings resolved as Hydra resolves them (a value still missing stays ???), with the
        # job's keys beside them for interpolations that reach into the config.
        both = OmegaConf.create({**OmegaConf.to_container(cfg, resolve=False),
                                 "hydra": OmegaConf.to_container(HydraConfig.get(), resolve=False)})
        try:
            OmegaConf.resolve(both.hydra)
        except OmegaConfBaseException as err:
            problems.append(KeyProblem("hydra", str(err).splitlines()[0]))
        config = {"hydra": OmegaConf.to_container(both.hydra, resolve=False, enum_to_str=True), **config}
    if package in (None, "", "_global_"):
        package, shown = None, config
    else:
        shown = config
        for part_of_key in package.split("."):
            if isinstance(shown, dict) and part_of_key in shown:
                shown = shown[part_of_key]
            elif isinstance(shown, list) and part_of_key.isdigit() and int(part_of_key) < len(shown):
                shown = shown[int(part_of_key)]
            else:
                keys = ", ".join(map(str, config))
                error = GenerationError(name, [f"--package {package}: no such key in the composed config (its "
                                               f"top-level keys: {keys})"])
                return "", error
        problems = [p for p in problems if p.key == package or p.key.startswith(package + ".")
                    or package.startswith(p.key + ".")]
    if problems:
        return "", GenerationError(name, [f"{p.key}: {p.message}" for p in problems])
    if not isinstance(shown, (dict, list)):
        text = f"{shown}\n"  # a single value, printed as Hydra prints it
    else:
        text = (f"# @package {package}\n" if package else "") + yaml.safe_dump(shown, sort_keys=False,
                                                                                 allow_unicode=True)
    return text, None


def provenance_text(config_name: str, cfg, provenance: Provenance, which: str | None) -> str:
    """``--provenance`` (``--which KEY``): every key of the composed config (under KEY) with its value and
    the file or override that set it."""
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True)
    rows = []

    def walk(node, prefix):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(value, dict) and value:
                walk(value, path)
            else:
                rows.append((path, value))

    walk(data, "")
    if which:
        import difflib

        keys = [k for k, _ in rows]
        rows = [(k, v) for k, v in rows if k == which or k.startswith(which + ".")]
        if not rows:
            close = difflib.get_close_matches(which, keys, n=1, cutoff=0.6)
            hint = f": did you mean {close[0]}?" if close else f" (its top-level keys: {', '.join(data)})"
            raise GenerationError(config_name, [f"--which {which}: no such key in the composed config{hint}"])
    width = max(len(f"{k} = {v}") for k, v in rows)
    return "".join(f"{f'{k} = {v}':<{width}}  # {provenance.source_of(k)}\n" for k, v in rows)
