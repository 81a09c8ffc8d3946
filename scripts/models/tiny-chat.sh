# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of tiny-chat, generated from conf/model/tiny-chat.yaml by tools/generate_args.py --goldens;
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
  --add-qkv-bias
  --untie-embeddings-and-output-weights
  --normalization RMSNorm
  --norm-epsilon 1e-6
  --rotary-base 10000
  --vocab-size 128
  --kv-channels 16
)
