# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of tiny-deepseek-v3, generated from conf/model/tiny-deepseek-v3.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --disable-bias-linear
  --num-layers 2
  --hidden-size 64
  --ffn-hidden-size 128
  --num-attention-heads 4
  --normalization RMSNorm
  --position-embedding-type rope
  --norm-epsilon 1e-6
  --swiglu
  --untie-embeddings-and-output-weights
  --vocab-size 16
  --multi-latent-attention
  --q-lora-rank 32
  --kv-lora-rank 16
  --qk-head-dim 16
  --qk-pos-emb-head-dim 8
  --v-head-dim 16
  --qk-layernorm
  --rotary-base 10000
  --no-rope-fusion
  --num-experts 4
  --moe-layer-freq '[0]*1+[1]*1'
  --moe-ffn-hidden-size 32
  --moe-router-topk 2
  --moe-shared-expert-intermediate-size 32
  --moe-router-score-function sigmoid
  --moe-router-enable-expert-bias
  --moe-router-load-balancing-type none
  --moe-aux-loss-coeff 0
  --moe-router-bias-update-rate 0
  --moe-router-group-topk 1
  --moe-router-num-groups 2
  --moe-router-topk-scaling-factor 2.5
  --moe-router-dtype fp32
  --moe-token-dispatcher-type allgather
)
