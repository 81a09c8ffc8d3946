# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of llama3.2-3B-Instruct, generated from conf/model/llama3.2-3B-Instruct.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --swiglu
  --num-layers 28
  --hidden-size 3072
  --ffn-hidden-size 8192
  --num-attention-heads 24
  --group-query-attention
  --num-query-groups 8
  --max-position-embeddings 131072
  --use-rotary-position-embeddings
  --disable-bias-linear
  --normalization RMSNorm
  --norm-epsilon 1e-5
  --rotary-base 500000
  --vocab-size 128256
  --kv-channels 128
  --use-rope-scaling
  --rotary-scaling-factor 32.0
)
