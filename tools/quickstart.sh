#!/usr/bin/env bash
# The main job on data the project generates itself, on CPU, no downloads:
# generate the synthetic AGD20K tree, train LoopTrans, evaluate it, score the trivial baselines, play the pointing
# game (is the heatmap's maximum on the object, on the part?), and draw the training curves (losses and
# pseudo-mask statistics) from the run's JSON log.
#   bash tools/quickstart.sh [WORK_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK_DIR=${1:-work_dirs/looptrans_synthetic}
CONFIG=configs/looptrans_synthetic.py

# (re)generate when absent or written by an older generator (without the test images' object / part masks)
if [ ! -d data/synthetic_agd20k/Seen/test_masks ]; then
  $PY tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0 --overwrite
fi
$PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
CKPT=$(cat "$WORK_DIR/last_checkpoint")
$PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" --show-dir vis
$PY tools/analysis_tools/eval_trivial_baselines.py "$CONFIG"
$PY tools/analysis_tools/eval_cam_pointing.py "$CONFIG" "$CKPT"
$PY tools/analysis_tools/analyze_logs.py "$WORK_DIR" --keys loss_cls_ego loss_pixel_dice pm_valid pm_true_iou \
  --title "LoopTrans quick start: losses and pseudo-mask statistics" --out "$WORK_DIR/training_curves.png"
echo "heatmap pictures: $WORK_DIR/test/vis"
echo "training curves: $WORK_DIR/training_curves.png"
