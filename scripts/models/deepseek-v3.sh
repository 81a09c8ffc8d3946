# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of deepseek-v3, generated from conf/model/deepseek-v3.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --disable-bias-linear
  --num-layers 61
  --hidden-size 7168
  --ffn-hidden-size 18432
  --num-attention-heads 128
  --kv-channels 128
  --normalization RMSNorm
  --position-embedding-type rope
  --norm-epsilon 1e-6
  --swiglu
  --untie-embeddings-and-output-weights
  --vocab-size 129280
  --multi-latent-attention
  --q-lora-rank 1536
  --kv-lora-rank 512
  --qk-head-dim 128
  --qk-pos-emb-head-dim 64
  --v-head-dim 128
  --qk-layernorm
  --rotary-scaling-factor 40
  --rotary-base 10000
  --mscale 1.0
  --mscale-all-dim 1.0
  --attention-softmax-in-fp32
  --no-rope-fusion
  --num-experts 256
  --moe-layer-freq '[0]*3+[1]*58'
  --moe-ffn-hidden-size 2048
  --moe-router-topk 8
  --moe-shared-expert-intermediate-size 2048
  --moe-router-pre-softmax
  --moe-router-score-function sigmoid
  --moe-router-enable-expert-bias
  --moe-router-load-balancing-type seq_aux_loss
  --moe-token-dispatcher-type alltoall
  --moe-aux-loss-coeff 0
  --moe-router-bias-update-rate 0
  --moe-router-group-topk 4
  --moe-router-num-groups 8
  --moe-grouped-gemm
  --moe-router-topk-scaling-factor 2.5
  --moe-router-dtype fp32
  --moe-permute-fusion
)
