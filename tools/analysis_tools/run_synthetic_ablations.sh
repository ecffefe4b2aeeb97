#!/usr/bin/env bash
# Train and test the full model and the three ablations on the generated data, then print their test
# figures side by side (the table in README.md#results).
#   bash tools/analysis_tools/run_synthetic_ablations.sh [WORK_ROOT]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
ROOT=${1:-work_dirs/synthetic_ablations}
mkdir -p "$ROOT"
[ -d data/synthetic_agd20k/Seen ] || $PY tools/misc/generate_synthetic_agd20k.py --out data/synthetic_agd20k --seed 0
declare -A CONFIGS=(
  [full]=configs/looptrans_synthetic.py
  [no_shared_cam]=configs/ablations/looptrans_synthetic_no_shared_cam.py
  [no_pixel]=configs/ablations/looptrans_synthetic_no_pixel.py
  [no_denoising]=configs/ablations/looptrans_synthetic_no_denoising.py
)
for name in full no_shared_cam no_pixel no_denoising; do
  cfg=${CONFIGS[$name]}
  if [ ! -f "$ROOT/$name/last_checkpoint" ]; then
    $PY tools/train.py "$cfg" --work-dir "$ROOT/$name" > "$ROOT/$name.train.log" 2>&1 || { tail -20 "$ROOT/$name.train.log"; exit 1; }
  fi
  $PY tools/test.py "$cfg" "$(cat "$ROOT/$name/last_checkpoint")" --work-dir "$ROOT/$name/test" \
    > "$ROOT/$name/test.log" 2>&1
done
echo "| config | KLD (lower is better) | SIM | NSS |"
echo "| --- | --- | --- | --- |"
for name in full no_shared_cam no_pixel no_denoising; do
  line=$(grep -E "Iter\(test\).*KLD" "$ROOT/$name/test.log" | tail -1)
  kld=$(echo "$line" | sed -E 's/.*KLD: ([-0-9.]+).*/\1/')
  sim=$(echo "$line" | sed -E 's/.*SIM: ([-0-9.]+).*/\1/')
  nss=$(echo "$line" | sed -E 's/.*NSS: ([-0-9.]+).*/\1/')
  echo "| $name | $kld | $sim | $nss |"
done
