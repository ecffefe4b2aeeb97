# Sourced by the launchers (dist_train.sh, dist_test.sh, slurm_train.sh): sets PYTHON to the interpreter that
# has looptrans. In order: $PYTHON when set; the active virtual environment's python; the project's .venv
# (made by tools/install/setup_env.sh), so the launchers work without `source .venv/bin/activate`; else
# python3 on the PATH. Fails with the fix when that interpreter cannot import torch and looptrans.
_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
    PYTHON=$VIRTUAL_ENV/bin/python
  elif [ -x "$_repo/.venv/bin/python" ]; then
    PYTHON=$_repo/.venv/bin/python
  else
    PYTHON=$(command -v python3 || command -v python || true)
  fi
fi
if [ -z "$PYTHON" ] || ! "$PYTHON" -c 'import torch, looptrans' 2>/dev/null; then
  echo "error: ${PYTHON:-no python} cannot import torch and looptrans. Run 'bash tools/install/setup_env.sh'" \
    "(it makes $_repo/.venv, which the launchers find by themselves), or set PYTHON=/path/to/python." >&2
  exit 2
fi
