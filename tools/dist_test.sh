#!/usr/bin/env bash
# Multi-GPU / multi-node testing through torchrun (python -m torch.distributed.run) and MMEngine's launcher.
#   bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [extra tools/test.py args]
# Multi-node: NNODES=2 NODE_RANK=0 MASTER_ADDR=host0 PORT=29500 bash tools/dist_test.sh CONFIG CKPT 8
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
# the python that has looptrans (active venv, else the project's .venv): no need to activate it first
source "$(dirname "$0")/find_python.sh"

"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$(dirname "$0")/test.py" \
    "$CONFIG" "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
