"""Command lines the tests start from."""

from __future__ import annotations

# The smallest command line that validates: a tiny dense model on one 8-GPU node, colocated.
TINY_MODEL = ["--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "8"]
MINIMAL_RUN = [
    "--hf-checkpoint", "/models/tiny", "--prompt-data", "/data/train.jsonl",
    "--rollout-batch-size", "8", "--n-samples-per-prompt", "4", "--num-rollout", "10",
    "--lr", "1e-6", "--colocate",
]
MINIMAL = TINY_MODEL + MINIMAL_RUN


# Qwen3-235B-A22B on 8 nodes for training and 8 more for rollout: 128 GPUs, 64 per side.
MOE_64_GPUS = """
--actor-num-nodes 8 --actor-num-gpus-per-node 8 --rollout-num-gpus 64 --rollout-num-gpus-per-engine 32
--tensor-model-parallel-size 4 --pipeline-model-parallel-size 4 --context-parallel-size 2
--expert-model-parallel-size 16 --expert-tensor-parallel-size 1 --sequence-parallel
--decoder-last-pipeline-num-layers 22
--hf-checkpoint /data/Qwen3-235B-A22B --ref-load /data/ref --load /data/ckpt --save /data/ckpt --save-interval 20
--prompt-data /data/dapo.jsonl --input-key prompt --label-key label --apply-chat-template
--rm-type dapo --reward-key score
--num-rollout 3000 --rollout-batch-size 32 --n-samples-per-prompt 8 --global-batch-size 64
--use-dynamic-batch-size --max-tokens-per-gpu 9216 --advantage-estimator gspo --lr 1e-6
--use-kl-loss --kl-loss-coef 0.00 --kl-loss-type low_var_kl
--sglang-enable-dp-attention --sglang-dp-size 4 --sglang-ep-size 32 --sglang-cuda-graph-bs 1 2 4 8 16 24 32
--eval-interval 20 --eval-prompt-data aime /data/aime.jsonl --n-samples-per-eval-prompt 16 --dry-run
""".split()
