"""The trainer's preflight: what would otherwise stop a run after Ray, its placement groups and the
engines have started, checked before anything is started, on the node the trainer runs on.

- every input path exists and can be read: ``--hf-checkpoint`` (a folder), ``--ref-load``, ``--load``
  (unless it is the run's own ``--save`` folder, empty before its first checkpoint), the prompt data,
  ``--eval-config`` and every evaluation dataset, for each train role;
- every ``--save`` folder can be written: a probe file is created in it and removed (the folders
  created on the way are removed again);
- the model flags agree with the checkpoint's ``config.json``, when it has one: layers, hidden size,
  heads, query groups, FFN, vocabulary (which megatron pads), rotary base, experts
  (``slime.model.hf_config``: the deep check's comparison, the tensor names read from the safetensors'
  headers);
- the packages the run needs on this node are installed: Ray, torch and transformers always,
  megatron-core for ``--train-backend megatron``, SGLang's router for the engines (unless an external
  one is given), TensorBoard for ``--use-tensorboard``.

Each problem is a ``Problem`` naming its flags, so a caller holding the config can name the keys and
files behind them. Standard library and the project's light modules only: no torch, Ray, Megatron or
SGLang is imported, and it takes milliseconds.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from slime.arguments.problems import Problem

INSTALL = "bash scripts/install-deps.sh cpu|gpu installs it"
# (module, what needs it, the flags that ask for it, how to install it): what the trainer's process
# imports or starts on its node
_ALWAYS = [("ray", "the trainer, which runs on Ray,", (), INSTALL), ("torch", "training", (), INSTALL),
           ("transformers", "the tokenizer", (), INSTALL)]
# Looks like a model hub id ("Qwen/Qwen3-4B"), which the trainer does not download.
_HUB_ID_PARTS = 2


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that is missing or broken
        return False


def package_problems(args: argparse.Namespace) -> list[Problem]:
    """The packages the run imports (or starts) on this node once it has started, that this Python
    cannot find. (The engines' SGLang runs on the engines' nodes, out of this node's sight.)"""
    needed = list(_ALWAYS)
    if args.train_backend == "megatron" and not args.debug_rollout_only:
        needed.append(("megatron.core", "--train-backend megatron", ("--train-backend",), INSTALL))
    if not args.debug_train_only and not args.sglang_router_ip:
        needed.append(("sglang_router", "SGLang's router, which the trainer starts in front of the engines,",
                       ("--sglang-router-ip",), INSTALL))
    if args.use_tensorboard:
        needed.append(("tensorboard", "--use-tensorboard", ("--use-tensorboard",),
                       "pip install tensorboard (bash scripts/install-deps.sh cpu|gpu --dev installs it)"))
    return [Problem(f"{what} needs the {module} package, which this Python ({sys.executable}) cannot import: "
                    f"{remedy}", flags)
            for module, what, flags, remedy in needed if not _installed(module)]


def _unreadable(path: Path, folder: bool | None) -> str | None:
    """Why ``path`` cannot be read as an input (``folder``: True a folder, False a file, None either)."""
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        where = f" (the nearest folder that exists is {parent})" if parent and str(parent) != "/" else ""
        return f"does not exist{where}"
    if folder is True and not path.is_dir():
        return "is not a folder"
    if folder is False and path.is_dir():
        return "is a folder, not a file"
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        return "cannot be read by this user"
    return None


def _hub_id_hint(value: str) -> str:
    parts = value.split("/")
    if len(parts) == _HUB_ID_PARTS and all(parts) and not value.startswith((".", "~")):
        return (f"; if {value} is a model hub id, download it first (huggingface-cli download {value} "
                f"--local-dir <folder>) and give that folder")
    return ""


def _writable(folder: Path) -> str | None:
    """Why nothing can be written into ``folder`` (created if missing), or None; leaves no trace."""
    missing = []
    existing = folder
    while not existing.exists():
        missing.append(existing)
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    created = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
        probe = folder / f".slime-preflight-{os.getpid()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        probe.unlink()
    except OSError as err:
        return f"cannot be written ({err.strerror}{f': {err.filename}' if err.filename else ''})"
    finally:
        for path in reversed(created):
            try:
                path.rmdir()
            except OSError:
                pass
    return None


def _roles(args: argparse.Namespace) -> list[tuple[str, argparse.Namespace]]:
    from slime.arguments.role_overrides import role_args

    if args.debug_rollout_only:
        return []
    return [(role, role_args(args, role)) for role in ["actor"] + (["critic"] if args.use_critic else [])]


class _Inputs:
    """The input paths of a run, each checked once: a path several flags name (``--ref-load`` the same
    as ``--hf-checkpoint``) is one problem that names them all."""

    def __init__(self) -> None:
        self.flags: dict[str, list[str]] = {}
        self.why: dict[str, str] = {}

    def need(self, flag: str, value: str | None, folder: bool | None, where: str = "") -> None:
        if not value or flag in self.flags.get(value, ()):
            return
        self.flags.setdefault(value, []).append(flag)
        why = _unreadable(Path(value), folder) if len(self.flags[value]) == 1 else None
        if why:
            self.why[value] = f"{where}: {why}{_hub_id_hint(value) if flag == '--hf-checkpoint' else ''}"

    def problems(self) -> list[Problem]:
        return [Problem(f"{', '.join(self.flags[value])} {value}{why}", tuple(self.flags[value]))
                for value, why in self.why.items()]


def path_problems(args: argparse.Namespace) -> list[Problem]:
    """Inputs that cannot be read, then ``--save`` folders that cannot be written."""
    inputs, saves = _Inputs(), []
    inputs.need("--hf-checkpoint", args.hf_checkpoint, True)
    for role, a in _roles(args):
        where = f" (the {role})" if role != "actor" else ""
        inputs.need("--hf-checkpoint", a.hf_checkpoint, True, where)
        if role == "actor":
            inputs.need("--ref-load", a.ref_load, None)
        # the run's own folder is empty before its first checkpoint; any other --load is there to be read
        own_folder = a.load and a.save and Path(a.load).resolve() == Path(a.save).resolve()
        if a.load and (not own_folder or Path(a.load).exists()):
            inputs.need("--critic-load" if role == "critic" else "--load", a.load, True, where)
        save_flag = "--critic-save" if role == "critic" else "--save"
        why = _writable(Path(a.save)) if a.save else None
        if why:
            saves.append(Problem(f"{save_flag} {a.save}{where}: {why}", (save_flag,)))
    if args.prompt_data and args.rollout_global_dataset and not args.load_debug_rollout_data:
        inputs.need("--prompt-data", args.prompt_data, False)
    unreadable_eval = _eval_problems(args, inputs) if not args.debug_train_only else []
    return inputs.problems() + unreadable_eval + saves


def _eval_problems(args: argparse.Namespace, inputs: _Inputs) -> list[Problem]:
    """The evaluation datasets into ``inputs``; an --eval-config that does not list datasets."""
    from slime.arguments.eval_datasets import eval_datasets

    if args.eval_config:
        inputs.need("--eval-config", args.eval_config, False)
        if not Path(args.eval_config).is_file():
            return []
    try:
        datasets = eval_datasets(args)
    except Exception as err:  # noqa: BLE001 - a file the user wrote: say what is wrong with it
        return [Problem(f"--eval-config {args.eval_config}: cannot be read as a list of datasets ({err})",
                        ("--eval-config",))]
    flag = "--eval-config" if args.eval_config else "--eval-prompt-data"
    for name, path in datasets:
        inputs.need(flag, path, False, f" (eval dataset {name})")
    return []


def checkpoint_problems(args: argparse.Namespace) -> list[Problem]:
    """The model flags of each train role against its ``--hf-checkpoint``'s config.json, where it has one."""
    from slime.model.hf_config import described_mismatches

    problems, seen = [], set()
    for role, a in _roles(args) or [("actor", args)]:
        folder = Path(a.hf_checkpoint) if a.hf_checkpoint else None
        if folder is None or not (folder / "config.json").is_file() or (folder, role) in seen:
            continue
        seen.add((folder, role))
        where = f" (the {role})" if role != "actor" else ""
        for message, flags in described_mismatches(a, folder):
            problems.append(Problem(f"{message}{where}", flags))
    return list(dict.fromkeys(problems))


def preflight(args: argparse.Namespace) -> list[Problem]:
    """Every problem the run would meet only after starting Ray and its engines; [] when there is none."""
    return path_problems(args) + checkpoint_problems(args) + package_problems(args)
