# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of imported_newmodel_model, generated from conf/model/imported_newmodel_model.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --swiglu
  --num-layers 20
  --hidden-size 2048
  --ffn-hidden-size 5632
  --num-attention-heads 16
  --group-query-attention
  --num-query-groups 4
  --use-rotary-position-embeddings
  --disable-bias-linear
  --normalization RMSNorm
  --norm-epsilon 1e-5
  --rotary-base 500000
  --vocab-size 32000
  --untie-embeddings-and-output-weights
)
