# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of qwen3.5-0.8B, generated from conf/model/qwen3.5-0.8B.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --spec slime_plugins.models.qwen3_5 get_qwen3_5_spec
  --disable-bias-linear
  --qk-layernorm
  --group-query-attention
  --num-attention-heads 8
  --num-query-groups 2
  --kv-channels 256
  --num-layers 24
  --hidden-size 1024
  --ffn-hidden-size 3584
  --use-gated-attention
  --normalization RMSNorm
  --apply-layernorm-1p
  --position-embedding-type rope
  --norm-epsilon 1e-6
  --rotary-percent 0.25
  --swiglu
  --vocab-size 248320
  --rotary-base 10000000
  --attention-output-gate
  --experimental-attention-variant gated_delta_net
  --linear-attention-freq 4
  --linear-num-key-heads 16
  --linear-num-value-heads 16
  --linear-key-head-dim 128
  --linear-value-head-dim 128
  --linear-conv-kernel-dim 4
)
