#!/usr/bin/env python3
"""Convert an HF checkpoint into a torch_dist checkpoint (Megatron's layout, "release"), for --ref-load.

    source scripts/models/qwen3-4B.sh
    python tools/convert_hf_to_torch_dist.py "${MODEL_ARGS[@]}" --hf-checkpoint /models/Qwen3-4B \
        --save /models/Qwen3-4B_torch_dist [--tensor-model-parallel-size N] [--pipeline-model-parallel-size N]

The model flags (MODEL_ARGS) must describe the checkpoint; a shape that disagrees stops the
conversion naming the tensor. Runs on CPU processes (one per tensor × pipeline rank); the result
reshards to any layout on load.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slime.backends.megatron.conversion_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("hf_to_torch_dist", sys.argv[1:]))
