#!/bin/bash
# Multi-node DDP with torchrun: run this on every node with the same MASTER_ADDR and its own NODE_RANK.
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh configs/medical_abstracts/biomedbert_mlp.yaml
#   NNODES=2 NODE_RANK=1 MASTER_ADDR=node0 bash scripts/torchrun_fit.sh configs/medical_abstracts/biomedbert_mlp.yaml
# One process per GPU that torch sees (so CUDA_VISIBLE_DEVICES counts), or GPUS_PER_NODE processes.
# Inside a SLURM allocation too (one task per node): Lightning takes torchrun's ranks, not SLURM's tasks.
# Activates MEDTEXT_VENV (default: the repository's .venv; set it empty to keep the current environment).
# Encoders load from the Hugging Face cache only (HF_HUB_OFFLINE=1 unless set; fill the cache with
# `python -m medtext download NAME` where there is internet); HF_HOME or HF_HUB_CACHE names the cache.
set -euo pipefail

die() { echo "torchrun_fit.sh: $*" >&2; exit 1; }
CONFIG=${1:?usage: scripts/torchrun_fit.sh CONFIG.yaml [--key=value ...]}
shift
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

NNODES=${NNODES:-1}
[[ "$NNODES" =~ ^[1-9][0-9]*$ ]] || die "NNODES is not a number of nodes: '$NNODES'"
# Defaults of 127.0.0.1 and 0 would make every node rank 0 of its own rendezvous, waiting for the others.
if (( NNODES > 1 )); then
    UNSET=$(for name in MASTER_ADDR NODE_RANK; do [[ -n "${!name:-}" ]] || printf ' %s' "$name"; done)
    [[ -z "$UNSET" ]] ||
        die "NNODES=$NNODES but$UNSET unset: on every node set MASTER_ADDR to node 0's address" \
            "and NODE_RANK to that node's number (0 to $((NNODES - 1)))"
fi
NODE_RANK=${NODE_RANK:-0}
[[ "$NODE_RANK" =~ ^[0-9]+$ ]] && (( NODE_RANK < NNODES )) ||
    die "NODE_RANK=$NODE_RANK is not a node number from 0 to $((NNODES - 1)) (NNODES=$NNODES)"

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
# Nodes without internet would wait for the hub to fail in every process; HF_HUB_OFFLINE=0 asks it.
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-${TRANSFORMERS_OFFLINE:-1}}
export HF_HOME=${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}
echo "torchrun_fit.sh: node $NODE_RANK of $NNODES, $GPUS process(es), with $(command -v python)"
echo "torchrun_fit.sh: encoders from ${HF_HUB_CACHE:-$HF_HOME/hub} (HF_HUB_OFFLINE=$HF_HUB_OFFLINE)"
torchrun --nnodes="$NNODES" --node-rank="$NODE_RANK" --nproc-per-node="$GPUS" \
    --master-addr="${MASTER_ADDR:-127.0.0.1}" --master-port="${MASTER_PORT:-29500}" \
    -m medtext fit --config "$CONFIG" --config "$REPO/configs/trainer/multinode.yaml" \
    --trainer.num_nodes="$NNODES" --trainer.devices="$GPUS" "$@"
