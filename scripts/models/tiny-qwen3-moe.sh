# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of tiny-qwen3-moe, generated from conf/model/tiny-qwen3-moe.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --swiglu
  --num-layers 2
  --hidden-size 64
  --ffn-hidden-size 128
  --num-attention-heads 4
  --group-query-attention
  --num-query-groups 2
  --use-rotary-position-embeddings
  --disable-bias-linear
  --qk-layernorm
  --normalization RMSNorm
  --norm-epsilon 1e-6
  --rotary-base 10000
  --vocab-size 16
  --kv-channels 16
  --untie-embeddings-and-output-weights
  --num-experts 4
  --moe-router-topk 2
  --moe-ffn-hidden-size 32
  --moe-router-score-function softmax
  --moe-router-load-balancing-type none
  --moe-aux-loss-coeff 0
  --moe-token-dispatcher-type allgather
)
