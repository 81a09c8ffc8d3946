"""HF checkpoints with quantized weights: DeepSeek's block-wise FP8 is read dequantized, the rest refused.

A checkpoint says it is quantized by ``quantization_config`` in its ``config.json``. DeepSeek-V3/R1
and Kimi-K2 publish FP8 weights that way (``quant_method: fp8``, ``weight_block_size: [128, 128]``):
each quantized ``*.weight`` is float8 (e4m3), and ``*.weight_scale_inv`` holds one float32 factor per
block of ``weight_block_size`` rows × columns (the last block of a dimension may be short). Its
full-precision value is the float8 value times its block's factor, which is what ``HFReader.get``
returns; every other tensor (norms, embeddings, the router) is stored in full precision already.

Any other quantization (per-tensor or per-channel FP8 scales, GPTQ, AWQ, bitsandbytes, MXFP4,
compressed-tensors, …) is refused, naming the file and what to do, rather than loaded as if its
integers were weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from slime.utils.hf_checkpoint import HFTensors, read_config

FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)
SCALE_SUFFIX = "_scale_inv"  # "...weight" → "...weight_scale_inv"


def block_fp8(config: dict) -> tuple[int, int] | None:
    """The block size of DeepSeek-style block-wise FP8, if that is this config's quantization."""
    quantization = config.get("quantization_config") or {}
    block = quantization.get("weight_block_size")
    if (quantization.get("quant_method") == "fp8" and quantization.get("fmt", "e4m3") == "e4m3" and
            isinstance(block, list) and len(block) == 2 and all(isinstance(b, int) and b > 0 for b in block)):
        return block[0], block[1]
    return None


def quantization_problem(config: dict, config_file: str | Path) -> str | None:
    """Why the megatron backend cannot read the weights of the HF checkpoint whose ``config_file``
    (``config.json``, already read into ``config``) this is; None when it can (full precision, or
    block-wise FP8)."""
    quantization = config.get("quantization_config")
    if not quantization or block_fp8(config):
        return None
    described = ", ".join(f"{key} {quantization[key]!r}" for key in ("quant_method", "fmt", "weight_block_size",
                                                                       "bits") if key in quantization)
    return (f"{config_file}: quantization_config ({described or 'no quant_method'}) is a quantization the megatron "
            "backend cannot read: it loads full-precision weights and DeepSeek-style block-wise FP8 (quant_method "
            "'fp8' with weight_block_size, each weight beside its weight_scale_inv). Convert the checkpoint to bf16 "
            "first (dequantize it, and drop quantization_config from config.json), or use its bf16 release")


def dequantize(weight: torch.Tensor, scale_inv: torch.Tensor, block: tuple[int, int], name: str = "") -> torch.Tensor:
    """A block-wise FP8 weight [rows, columns] in float32: each block of ``block`` rows × columns times
    its factor in ``scale_inv`` [ceil(rows / block rows), ceil(columns / block columns)]."""
    if weight.dim() != 2:
        raise ValueError(f"{name}: block-wise FP8 weights are matrices, this one has shape {tuple(weight.shape)}")
    rows, columns = weight.shape
    expected = (-(-rows // block[0]), -(-columns // block[1]))
    if tuple(scale_inv.shape) != expected:
        raise ValueError(f"{name}{SCALE_SUFFIX} has shape {tuple(scale_inv.shape)}, but a {rows}×{columns} weight in "
                         f"blocks of {block[0]}×{block[1]} needs {expected}")
    factors = scale_inv.float().repeat_interleave(block[0], 0)[:rows].repeat_interleave(block[1], 1)[:, :columns]
    return weight.float() * factors


class HFReader:
    """The tensors of an HF checkpoint folder in full precision: block-wise FP8 weights dequantized,
    any other quantization refused when the folder is opened."""

    def __init__(self, path: str | Path):
        config = read_config(path)
        problem = quantization_problem(config, Path(path) / "config.json")
        if problem:
            raise ValueError(problem)
        self.path = Path(path)
        self.tensors = HFTensors(path)
        self.block = block_fp8(config)

    def __contains__(self, name: str) -> bool:
        return name in self.tensors

    def get(self, name: str) -> torch.Tensor:
        tensor = self.tensors.get(name)
        if tensor.dtype not in FP8:
            return tensor
        scale = name + SCALE_SUFFIX
        if self.block is None or scale not in self.tensors:
            why = "its config.json has no block-wise FP8 quantization_config" if self.block is None else \
                f"the checkpoint has no {scale}"
            raise ValueError(f"{self.path}: {name} is stored as {tensor.dtype} but {why}, so it cannot be "
                             "dequantized: convert the checkpoint to bf16 first")
        return dequantize(tensor, self.tensors.get(scale), self.block, name)
