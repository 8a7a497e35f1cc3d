#!/bin/bash
# Multi-node DDP with torchrun (no SLURM): run this on every node with the same MASTER_ADDR.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh configs/medical_abstracts/biomedbert_mlp.yaml
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh configs/medical_abstracts/biomedbert_mlp.yaml
# One process per GPU that torch sees (so CUDA_VISIBLE_DEVICES counts), or GPUS_PER_NODE processes.
# Activates MEDTEXT_VENV (default: the repository's .venv; set it empty to keep the current environment).
set -euo pipefail

die() { echo "torchrun_fit.sh: $*" >&2; exit 1; }
CONFIG=${1:?usage: scripts/torchrun_fit.sh CONFIG.yaml [--key=value ...]}
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

VENV=${MEDTEXT_VENV-$REPO/.venv}
if [[ -n "$VENV" ]]; then
    [[ -f "$VENV/bin/activate" ]] ||
        die "no virtualenv at $VENV: create it (python -m venv .venv && .venv/bin/pip install -e .)" \
            "or set MEDTEXT_VENV (empty: keep the current environment)"
    set +u; . "$VENV/bin/activate"; set -u
fi

if [[ -n "${GPUS_PER_NODE:-}" ]]; then
    GPUS=$GPUS_PER_NODE
else
    # nvidia-smi -L would ignore CUDA_VISIBLE_DEVICES and list MIG slices as well as their GPUs.
    GPUS=$(python -c "import torch; print(torch.cuda.device_count())") ||
        die "could not ask torch how many GPUs it sees (python: $(command -v python))"
    GPUS=${GPUS##*$'\n'}
    [[ "$GPUS" != 0 ]] ||
        die "torch sees no GPU (CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset});" \
            "set GPUS_PER_NODE=N to start N processes per node anyway"
fi
[[ "$GPUS" =~ ^[1-9][0-9]*$ ]] || die "not a number of processes per node: '$GPUS' (GPUS_PER_NODE, or what torch printed)"

export TOKENIZERS_PARALLELISM=false
echo "torchrun_fit.sh: node ${NODE_RANK:-0} of ${NNODES:-1}, $GPUS process(es), with $(command -v python)"
torchrun --nnodes="${NNODES:-1}" --node-rank="${NODE_RANK:-0}" --nproc-per-node="$GPUS" \
    --master-addr="${MASTER_ADDR:-127.0.0.1}" --master-port="${MASTER_PORT:-29500}" \
    -m medtext fit --config "$CONFIG" --config "$REPO/configs/trainer/multinode.yaml" \
    --trainer.num_nodes="${NNODES:-1}" --trainer.devices="$GPUS" "$@"
