#!/usr/bin/env python3
"""Convert a torch_dist checkpoint (a run's --save, or a converted one) back into an HF checkpoint.

    source scripts/models/qwen3-4B.sh
    python tools/convert_torch_dist_to_hf.py "${MODEL_ARGS[@]}" --load /ckpt/Qwen3-4B_slime \
        --hf-checkpoint /models/Qwen3-4B --save /models/Qwen3-4B-rl

--load takes the latest checkpoint in the folder (or an iter_* folder itself); --hf-checkpoint gives
the config, tokenizer and each tensor's dtype. Tensors come out under HF's checkpoint names.
"""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.convert_checkpoint")("torch_dist_to_hf", sys.argv[1:]))
