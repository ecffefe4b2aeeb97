#!/usr/bin/env bash
# One-shot GPU check: speed of the training step (fp32 and --amp), 20 --amp training iterations on generated
# data with finite losses, test and inference throughput at batch 1 and 64, printed as one table.
#
#   bash tools/analysis_tools/gpu_check.sh [OUT_DIR]          # default work_dirs/gpu_check
#
# Parts (each one's full output is kept in OUT_DIR):
#   1. tools/analysis_tools/benchmark.py configs/looptrans_agd20k.py, batch 16, fp32  -> bench_fp32.txt
#   2. the same with --amp (bf16 autocast where the GPU supports it, else fp16)       -> bench_amp.txt
#   3. tools/misc/generate_synthetic_agd20k.py (Seen split, 48 test images per pair)  -> data/
#   4. tools/train.py configs/looptrans_synthetic.py --amp, 20 iterations, pseudo-mask supervision on from
#      iteration 10, every iteration logged on its own (window 1: the table's median s/iter is a step's, not a
#      10-iteration mean holding the first iteration's warm-up); fails when a loss is not finite -> train.log
#   5. tools/test.py on the generated test set at batch 1 and 64                       -> test_b1.log, test_b64.log
#   6. tools/analysis_tools/benchmark_metric.py --device cuda: the AGD20K metric batched on the GPU against
#      the published per-image code (200 maps, 14x14 predictions, 480x640 float64 GT)  -> metric.txt
#   7. tools/analysis_tools/gpu_check_table.py: the table                             -> gpu_check.md/.json
# Exit status: 0 when every part ran and every loss was finite; 2 when no GPU is visible (checked first,
# nothing else runs); 1 otherwise (the table says which part failed).
# Environment: PY (default .venv/bin/python), WORKERS (test data loader workers, default 8),
# BENCH_CONFIG (default configs/looptrans_agd20k.py), BENCH_BATCH (default 16), TRAIN_ITERS (default 20),
# GPU_CHECK_DATA (a generated dataset to use instead of generating OUT_DIR/data).
# --cpu-smoke (for the test suite only): the same plumbing on CPU at toy sizes, fp32 training; its numbers
# mean nothing.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
SMOKE=0
OUT=work_dirs/gpu_check
for arg in "$@"; do
  case "$arg" in
    --cpu-smoke) SMOKE=1 ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "gpu_check.sh: unknown option $arg" >&2; exit 2 ;;
    *) OUT=$arg ;;
  esac
done
if ! [ -x "$PY" ] && ! command -v "$PY" >/dev/null 2>&1; then
  echo "gpu_check.sh: no Python at $PY (install first: bash tools/install/setup_env.sh, or set PY)" >&2
  exit 2
fi

# 0. A GPU, or stop here.
if [ "$SMOKE" = 0 ]; then
  if ! "$PY" - >&2 <<'EOF'
import os, sys
try:
    import torch
except ImportError as err:
    print(f'gpu_check.sh: {sys.executable} cannot import torch ({err}); install first '
          '(bash tools/install/setup_env.sh) or set PY to the Python that has it.')
    sys.exit(1)
if not torch.cuda.is_available():
    print('gpu_check.sh: no CUDA GPU is visible to torch (torch.cuda.is_available() is False), so nothing '
          'was run.')
    print(f'  torch {torch.__version__}, built with CUDA {torch.version.cuda}; '
          f'CUDA_VISIBLE_DEVICES={os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")}')
    print('  Run this on a machine with an NVIDIA GPU and its driver (nvidia-smi must list it).')
    sys.exit(1)
EOF
  then
    exit 2
  fi
fi
mkdir -p "$OUT"
: > "$OUT/status.txt"
export PYTHONUNBUFFERED=1

"$PY" - "$OUT/env.json" "$SMOKE" <<'EOF'
import json, sys, torch
smoke = sys.argv[2] == '1'
env = dict(torch=torch.__version__, cuda=torch.version.cuda)
if smoke:
    env.update(gpu='CPU (smoke run: numbers mean nothing)', bf16='n/a', amp_dtype='bfloat16')
else:
    bf16 = torch.cuda.is_bf16_supported()
    env.update(gpu=torch.cuda.get_device_name(0), gpu_count=torch.cuda.device_count(),
               capability='.'.join(map(str, torch.cuda.get_device_capability(0))),
               memory_gib=round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
               bf16='yes' if bf16 else 'no', amp_dtype='bfloat16' if bf16 else 'float16')
try:
    import mmcv
    from mmcv.ops import get_compiling_cuda_version
    env.update(mmcv=mmcv.__version__, mmcv_cuda_ops=get_compiling_cuda_version())
except Exception as err:  # the check still runs: LoopTrans uses no mmcv op
    env.update(mmcv='?', mmcv_cuda_ops=f'unknown ({type(err).__name__}: {err})')
json.dump(env, open(sys.argv[1], 'w'), indent=1)
print('gpu_check:', ', '.join(f'{k} {v}' for k, v in env.items()))
EOF

FAILED=0
run_part() {  # run_part NAME LOGFILE CMD...: run, log, record the exit status
  local name=$1 log=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name: $*"
  "$@" > "$log" 2>&1
  rc=$?
  echo "$name $rc" >> "$OUT/status.txt"
  echo "   $name: exit $rc after $(( $(date +%s) - start )) s (log: $log)"
  if [ "$rc" != 0 ]; then
    FAILED=1
    tail -n 20 "$log" | sed 's/^/   | /'
  fi
  return "$rc"
}

DATA=${GPU_CHECK_DATA:-$OUT/data}
if [ "$SMOKE" = 1 ]; then
  BENCH=(configs/looptrans_synthetic.py --device cpu --batch-size 1 --size 112 --iters 1 --warmup 0
         --infer-batch-sizes 1 2 --cfg-options model.backbone.arch.num_layers=1)
  GEN=(--num-exo 3 --num-ego 1 --num-test 1)
  ITERS=${TRAIN_ITERS:-4}
  AMP=()
  TEST_BATCHES=(1 2)
  METRIC=(--device cpu --num-images 8 --gt-size 48 64 --repeats 1)
  SHRINK=(train_dataloader.batch_size=2 train_dataloader.num_workers=0 train_dataloader.persistent_workers=False
          val_dataloader.num_workers=0 val_dataloader.persistent_workers=False
          model.backbone.arch.num_layers=1 model.cam_head.channels=32 model.noise_head.channels=32
          model.pixel_head.channels=32)
  WORKERS=0
else
  BENCH=("${BENCH_CONFIG:-configs/looptrans_agd20k.py}" --device cuda --batch-size "${BENCH_BATCH:-16}"
         --infer-batch-sizes 1 64)
  GEN=(--num-test 48)
  ITERS=${TRAIN_ITERS:-20}
  AMP=(--amp)
  TEST_BATCHES=(1 64)
  METRIC=(--device cuda --repeats 3)
  SHRINK=()
  WORKERS=${WORKERS:-8}
fi

run_part bench_fp32 "$OUT/bench_fp32.txt" "$PY" tools/analysis_tools/benchmark.py "${BENCH[@]}"
run_part bench_amp "$OUT/bench_amp.txt" "$PY" tools/analysis_tools/benchmark.py "${BENCH[@]}" --amp

if [ ! -d "$DATA/Seen" ]; then
  run_part data "$OUT/data.log" "$PY" tools/misc/generate_synthetic_agd20k.py --out "$DATA" --seed 0 \
    --splits Seen "${GEN[@]}"
fi
ROOTS=(train_dataloader.dataset.data_root="$DATA" val_dataloader.dataset.data_root="$DATA"
       test_dataloader.dataset.data_root="$DATA")
rm -rf "$OUT/train"
if run_part train "$OUT/train.log" "$PY" tools/train.py configs/looptrans_synthetic.py ${AMP[@]+"${AMP[@]}"} \
    --work-dir "$OUT/train" --cfg-options "${ROOTS[@]}" ${SHRINK[@]+"${SHRINK[@]}"} \
    train_cfg.max_iters="$ITERS" train_cfg.val_interval="$ITERS" default_hooks.logger.interval=1 \
    log_processor.window_size=1 \
    default_hooks.checkpoint.interval="$ITERS" custom_hooks.0.start_iter=$(( ITERS / 2 )); then
  CKPT=$(cat "$OUT/train/last_checkpoint")
  for B in "${TEST_BATCHES[@]}"; do
    INTERVAL=$(( B >= 16 ? 5 : 50 ))
    [ "$SMOKE" = 1 ] && INTERVAL=1
    rm -rf "$OUT/test_b$B"
    run_part "test_b$B" "$OUT/test_b$B.log" "$PY" tools/test.py configs/looptrans_synthetic.py "$CKPT" \
      --work-dir "$OUT/test_b$B" --cfg-options "${ROOTS[@]}" ${SHRINK[@]+"${SHRINK[@]}"} \
      test_dataloader.batch_size="$B" test_dataloader.num_workers="$WORKERS" \
      test_dataloader.persistent_workers=False default_hooks.logger.interval="$INTERVAL"
  done
fi

run_part metric "$OUT/metric.txt" "$PY" tools/analysis_tools/benchmark_metric.py "${METRIC[@]}"

echo
"$PY" tools/analysis_tools/gpu_check_table.py "$OUT" --test-batches "${TEST_BATCHES[@]}" || FAILED=1
echo
echo "gpu_check: outputs in $OUT (table: $OUT/gpu_check.md)"
exit "$FAILED"
