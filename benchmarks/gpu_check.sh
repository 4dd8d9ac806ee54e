#!/usr/bin/env bash
# GPU check for the integrator: ONE run on a CUDA machine, about 3 minutes, progress printed:
# model-only, cold (files decoded in a DataLoader) and warm (decoded cache) FPS in TF32, true
# fp32 and bf16, then one training epoch (see gpu_check.py).
#   bash benchmarks/gpu_check.sh            # from the repository root; results in $OUT and results/
# Needs python3 with torch (CUDA build), numpy, pillow and pandas. If torch is missing and
# WHEELHOUSE points at a folder of wheels (torch, numpy, pillow, pandas and their
# dependencies), they are installed from there without the network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ -x .venv/bin/python ] && .venv/bin/python -c 'import torch' 2>/dev/null; then PYTHON=.venv/bin/python; fi
if ! "$PYTHON" -c 'import torch, numpy, PIL, pandas' 2>/dev/null; then
  if [ -n "${WHEELHOUSE:-}" ]; then
    echo "installing torch numpy pillow pandas from $WHEELHOUSE"
    "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELHOUSE" torch numpy pillow pandas
  else
    echo "error: $PYTHON lacks torch/numpy/pillow/pandas; set WHEELHOUSE=<folder of wheels> or PYTHON=<python with torch>" >&2
    exit 2
  fi
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || true
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p results "${OUT:-results}"
# 420 s: a safety net well above the ~3 minutes expected (gpu_fps.json is written before the
# training epoch, so a kill during training still leaves the FPS result).
timeout 420 "$PYTHON" benchmarks/gpu_check.py "$@"
