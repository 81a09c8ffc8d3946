# shellcheck shell=bash disable=SC2034  # MODEL_ARGS is read by the script that sources this file
# MODEL_ARGS of moonlight, generated from conf/model/moonlight.yaml by tools/generate_args.py --goldens;
# do not edit: change the YAML and regenerate.

MODEL_ARGS=(
  --disable-bias-linear
  --num-layers 27
  --hidden-size 2048
  --ffn-hidden-size 11264
  --num-attention-heads 16
  --kv-channels 128
  --normalization RMSNorm
  --position-embedding-type rope
  --norm-epsilon 1e-5
  --rotary-percent 1.0
  --swiglu
  --untie-embeddings-and-output-weights
  --no-masked-softmax-fusion
  --vocab-size 163840
  --multi-latent-attention
  --kv-lora-rank 512
  --qk-head-dim 128
  --qk-pos-emb-head-dim 64
  --v-head-dim 128
  --qk-layernorm
  --rotary-scaling-factor 1
  --rotary-base 50000
  --mscale 1.0
  --mscale-all-dim 1.0
  --attention-softmax-in-fp32
  --no-rope-fusion
  --num-experts 64
  --moe-layer-freq '[0]*1+[1]*26'
  --moe-ffn-hidden-size 1408
  --moe-router-topk 6
  --moe-shared-expert-intermediate-size 2816
  --moe-router-pre-softmax
  --moe-router-score-function sigmoid
  --moe-router-enable-expert-bias
  --moe-router-load-balancing-type seq_aux_loss
  --moe-token-dispatcher-type alltoall
  --moe-aux-loss-coeff 0
  --moe-router-bias-update-rate 0
  --moe-router-group-topk 1
  --moe-router-num-groups 1
  --moe-grouped-gemm
  --moe-router-topk-scaling-factor 2.446
  --moe-token-drop-policy probs
  --moe-router-dtype fp32
  --moe-permute-fusion
)
