# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of qwen2.5-3B, generated from conf/model/qwen2.5-3B.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --swiglu
  --num-layers 36
  --hidden-size 2048
  --ffn-hidden-size 11008
  --num-attention-heads 16
  --use-rotary-position-embeddings
  --disable-bias-linear
  --add-qkv-bias
  --normalization RMSNorm
  --norm-epsilon 1e-6
  --rotary-base 1000000
  --group-query-attention
  --num-query-groups 2
  --vocab-size 151936
)
