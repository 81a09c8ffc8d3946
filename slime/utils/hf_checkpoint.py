"""A HuggingFace checkpoint folder: its ``config.json``, its safetensors tensors by name, and writing one.

Reading the config and the tensor names needs no torch; tensors are read lazily from ``model.safetensors`` or the shards
that ``model.safetensors.index.json`` lists, so a converter holds one tensor at a time. Writing
splits tensors into shards of at most ``shard_bytes`` with the index HF writes, and copies the
config, generation config and tokenizer files from a source checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
# config, generation config, tokenizer and chat template: what a folder needs besides the weights
SIDE_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
              "special_tokens_map.json", "vocab.json", "merges.txt", "tokenizer.model", "chat_template.jinja",
              "added_tokens.json")


def is_hf_checkpoint(path: str | Path | None) -> bool:
    folder = Path(path) if path else None
    return bool(folder and (folder / "config.json").is_file() and
                ((folder / SINGLE).is_file() or (folder / INDEX).is_file()))


def read_config(path: str | Path) -> dict:
    return json.loads((Path(path) / "config.json").read_text())


def tensor_names(path: str | Path) -> list[str] | None:
    """The tensor names of a checkpoint folder, from its index or its safetensors header (no tensor is
    read, no torch); ``None`` when the folder has no safetensors."""
    folder = Path(path)
    if (folder / INDEX).is_file():
        return sorted(json.loads((folder / INDEX).read_text())["weight_map"])
    if (folder / SINGLE).is_file():
        with open(folder / SINGLE, "rb") as f:
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        return sorted(name for name in header if name != "__metadata__")
    return None


class HFTensors:
    """The tensors of a checkpoint folder, by HF name."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if (self.path / INDEX).is_file():
            weight_map = json.loads((self.path / INDEX).read_text())["weight_map"]
        elif (self.path / SINGLE).is_file():
            from safetensors import safe_open

            with safe_open(self.path / SINGLE, "pt") as f:
                weight_map = {name: SINGLE for name in f.keys()}
        else:
            raise FileNotFoundError(f"{self.path}: no {SINGLE} or {INDEX} (only safetensors checkpoints are read)")
        self.weight_map: dict[str, str] = weight_map
        self._open: dict[str, object] = {}

    def names(self) -> list[str]:
        return sorted(self.weight_map)

    def __contains__(self, name: str) -> bool:
        return name in self.weight_map

    def get(self, name: str):
        from safetensors import safe_open

        if name not in self.weight_map:
            raise KeyError(f"{self.path}: the checkpoint has no tensor {name!r}")
        file = self.weight_map[name]
        if file not in self._open:
            self._open[file] = safe_open(self.path / file, "pt")
        return self._open[file].get_tensor(name)


def write_hf(path: str | Path, tensors, source: str | Path, shard_bytes: int = 5 * 1024**3) -> None:
    """Write ``tensors`` (an iterable of (name, tensor)) as safetensors shards under ``path``, with the
    side files of ``source``."""
    from safetensors.torch import save_file

    target = Path(path)
    target.mkdir(parents=True, exist_ok=True)
    shards: list[dict] = [{}]
    size = 0
    for name, tensor in tensors:
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor.contiguous()
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], target / SINGLE, metadata={"format": "pt"})
    else:
        weight_map, total = {}, 0
        for i, shard in enumerate(shards, 1):
            file = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
            save_file(shard, target / file, metadata={"format": "pt"})
            weight_map.update({name: file for name in shard})
            total += sum(t.numel() * t.element_size() for t in shard.values())
        (target / INDEX).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                               indent=2) + "\n")
    for name in SIDE_FILES:
        if (Path(source) / name).is_file() and Path(source).resolve() != target.resolve():
            shutil.copy2(Path(source) / name, target / name)
