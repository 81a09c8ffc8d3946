#!/usr/bin/env python3
"""Convert an HF checkpoint into a torch_dist checkpoint (Megatron's layout, "release"), for --ref-load.

    source scripts/models/qwen3-4B.sh
    python tools/convert_hf_to_torch_dist.py "${MODEL_ARGS[@]}" --hf-checkpoint /models/Qwen3-4B \
        --save /models/Qwen3-4B_torch_dist [--tensor-model-parallel-size N] [--pipeline-model-parallel-size N]

The model flags (MODEL_ARGS) must describe the checkpoint; a shape that disagrees stops the
conversion naming the tensor. Runs on CPU processes (one per tensor × pipeline rank); the result
reshards to any layout on load.
"""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.convert_checkpoint")("hf_to_torch_dist", sys.argv[1:]))
