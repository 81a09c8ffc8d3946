#!/usr/bin/env python3
"""Convert a torch_dist checkpoint (a run's --save, or a converted one) back into an HF checkpoint.

    source scripts/models/qwen3-4B.sh
    python tools/convert_torch_dist_to_hf.py "${MODEL_ARGS[@]}" --load /ckpt/Qwen3-4B_slime \
        --hf-checkpoint /models/Qwen3-4B --save /models/Qwen3-4B-rl

--load takes the latest checkpoint in the folder (or an iter_* folder itself); --hf-checkpoint gives
the config, tokenizer and each tensor's dtype. Tensors come out under HF's checkpoint names.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from slime.backends.megatron.conversion_cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main("torch_dist_to_hf", sys.argv[1:]))
