# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of qwen2.5-32B, generated from conf/model/qwen2.5-32B.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --swiglu
  --num-layers 64
  --hidden-size 5120
  --ffn-hidden-size 27648
  --num-attention-heads 40
  --group-query-attention
  --num-query-groups 8
  --use-rotary-position-embeddings
  --disable-bias-linear
  --add-qkv-bias
  --normalization RMSNorm
  --norm-epsilon 1e-5
  --rotary-base 1000000
  --vocab-size 152064
  --untie-embeddings-and-output-weights
)
