#!/bin/bash
# Multi-node DDP with torchrun (no SLURM): run this on every node with the same MASTER_ADDR.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh configs/medical_abstracts/biomedbert_mlp.yaml
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh configs/medical_abstracts/biomedbert_mlp.yaml
set -euo pipefail
CONFIG=${1:?usage: scripts/torchrun_fit.sh CONFIG.yaml [--key=value ...]}
shift
GPUS=${GPUS_PER_NODE:-$(nvidia-smi -L | wc -l)}
export TOKENIZERS_PARALLELISM=false
torchrun --nnodes="${NNODES:-1}" --node-rank="${NODE_RANK:-0}" --nproc-per-node="$GPUS" \
    --master-addr="${MASTER_ADDR:-127.0.0.1}" --master-port="${MASTER_PORT:-29500}" \
    -m medtext fit --config "$CONFIG" --config configs/trainer/multinode.yaml \
    --trainer.num_nodes="${NNODES:-1}" --trainer.devices="$GPUS" "$@"
