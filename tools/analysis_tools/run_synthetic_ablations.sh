#!/usr/bin/env bash
# Train and test the paper's six ablation rows on the generated data, then print their test figures side
# by side (the table in docs/results.md, "The paper's six ablation rows on the generated data"). Row "all" is
# the full model (configs/looptrans_synthetic.py).
#   bash tools/analysis_tools/run_synthetic_ablations.sh [WORK_ROOT] [ROW ...]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
ROOT=${1:-work_dirs/synthetic_ablations}
shift || true
ROWS=("$@")
[ ${#ROWS[@]} -gt 0 ] || ROWS=(none shared_cam denoising shared_cam_pixel shared_cam_denoising all)
mkdir -p "$ROOT"
[ -d data/synthetic_agd20k/Seen ] || $PY tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
for name in "${ROWS[@]}"; do
  cfg=configs/ablations/looptrans_synthetic_$name.py
  [ -f "$cfg" ] || { echo "unknown row $name: no $cfg" >&2; exit 2; }
  if [ ! -f "$ROOT/$name/last_checkpoint" ]; then
    $PY tools/train.py "$cfg" --work-dir "$ROOT/$name" > "$ROOT/$name.train.log" 2>&1 || { tail -20 "$ROOT/$name.train.log"; exit 1; }
  fi
  $PY tools/test.py "$cfg" "$(cat "$ROOT/$name/last_checkpoint")" --work-dir "$ROOT/$name/test" \
    > "$ROOT/$name/test.log" 2>&1
done
echo "| row | KLD (lower is better) | SIM | NSS |"
echo "| --- | --- | --- | --- |"
for name in "${ROWS[@]}"; do
  line=$(grep -E "Iter\(test\).*KLD" "$ROOT/$name/test.log" | tail -1)
  kld=$(echo "$line" | sed -E 's/.*KLD: ([-0-9.]+).*/\1/')
  sim=$(echo "$line" | sed -E 's/.*SIM: ([-0-9.]+).*/\1/')
  nss=$(echo "$line" | sed -E 's/.*NSS: ([-0-9.]+).*/\1/')
  echo "| $name | $kld | $sim | $nss |"
done
