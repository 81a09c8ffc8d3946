# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of qwen3-next-80B-A3B, generated from conf/model/qwen3-next-80B-A3B.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --spec slime_plugins.models.qwen3_next get_qwen3_next_spec
  --disable-bias-linear
  --qk-layernorm
  --group-query-attention
  --num-attention-heads 16
  --num-query-groups 2
  --kv-channels 256
  --num-layers 48
  --hidden-size 2048
  --ffn-hidden-size 5120
  --use-gated-attention
  --normalization RMSNorm
  --apply-layernorm-1p
  --position-embedding-type rope
  --norm-epsilon 1e-6
  --rotary-percent 0.25
  --swiglu
  --untie-embeddings-and-output-weights
  --vocab-size 151936
  --rotary-base 10000000
  --moe-ffn-hidden-size 512
  --moe-shared-expert-intermediate-size 512
  --moe-router-score-function softmax
  --moe-token-dispatcher-type alltoall
  --moe-router-topk 10
  --moe-layer-freq '[1]*48'
  --num-experts 512
  --moe-grouped-gemm
  --moe-token-drop-policy probs
  --moe-router-dtype fp32
  --moe-permute-fusion
  --moe-aux-loss-coeff 0
  --attention-output-gate
  --experimental-attention-variant gated_delta_net
  --linear-attention-freq 4
  --linear-num-key-heads 16
  --linear-num-value-heads 32
  --linear-key-head-dim 128
  --linear-value-head-dim 128
  --linear-conv-kernel-dim 4
  --moe-shared-expert-gate
)
