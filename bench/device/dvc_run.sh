#!/usr/bin/env bash
# The whole pipeline as users run it (`dvc exp run` in docs/scaling.md's full-data configuration,
# bench/full_data.txt, with MLflow recording every stage) on a lent GPU box, in ONE call.
# The box has torch, timm, numpy and scikit-learn but neither dvc nor mlflow, no network,
# and takes 64 MiB per call: ../shared/gpu/pack.sh packs the data, the weights and the
# dvc + mlflow wheels into 63 MiB.
#
#   here, once:  bash ../shared/gpu/pack.sh bench/device/device-requirements.txt .gpu-pack
#   the call:    carry [.gpu-pack];  bash bench/device/dvc_run.sh [-S key=value ...]
#
# Later -S win over the configuration's (a toy size, for a CPU check). LIMIT_S (default
# 480) bounds the run: dvc's stage processes outlive a plain `timeout`, so the run gets its
# own process group, which is killed whole. Writes to $OUT (default reports/dvc_run):
# run.json (seconds, exit, GPU busy share, mean SM use), timeline.json, metrics.json,
# report.md, timeline.png, dvc.log and gpu.csv (nvidia-smi dmon, one sample a second).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT="${OUT:-reports/dvc_run}"
PACK="${PACK:-.gpu-pack}"
LIMIT_S="${LIMIT_S:-480}"
PYTHON="${PYTHON:-$(command -v python3 || command -v python)}"
mkdir -p "$OUT"

if [[ -f "$PACK/unpack.sh" ]]; then
    bash "$PACK/unpack.sh" >/dev/null  # wheels into /tmp/site, data into .fmnist/
    export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PATH="/tmp/site/bin:$PATH"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
# dvc starts each stage as `python -m …` through the shell: the python that holds torch
# (a wrapper, not a link: a link to a venv's python would lose the venv).
shim=$(mktemp -d)
printf '#!/bin/sh\nexec "%s" "$@"\n' "$PYTHON" >"$shim/python"
chmod +x "$shim/python"
export PATH="$shim:$PATH"

if [[ ! -e .git ]]; then  # the box gets the working tree without .git; experiments need one
    git init -q
    git add -A
    git -c user.name=device -c user.email=device@localhost commit -qm "working tree"
fi

# GPU results are not bit-reproducible anyway (CUDA kernels): give CPU work every core
# instead of the 2 threads the stages pin for cross-machine identity on CPU.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"

overrides=()
source bench/device/device.sh
full_data_overrides  # the configuration, then ours: later -S win
# One candidate, lite0: its weights wheel (17.4 MB) is the one the 64 MiB pack has room for;
# lite1's (20 MB) is not carried (../shared/gpu/README.md).
overrides+=(-S '~backbones.lite1')
[[ -d .fmnist ]] && overrides+=(-S data.path=.fmnist)
for kv in "$@"; do [[ $kv == -S ]] || overrides+=(-S "$kv"); done

sampler=""
if command -v nvidia-smi >/dev/null; then
    nvidia-smi dmon -s u -d 1 >"$OUT/gpu.csv" 2>&1 &
    sampler=$!
fi
start=$(date +%s.%N)
setsid "$PYTHON" -m dvc exp run "${overrides[@]}" >"$OUT/dvc.log" 2>&1 &
run=$!
(
    sleep "$LIMIT_S"
    kill -TERM -- "-$run"
    sleep 10
    kill -KILL -- "-$run"
) >/dev/null 2>&1 &
watchdog=$!
status=0
wait "$run" || status=$?
end=$(date +%s.%N)
pkill -P "$watchdog" 2>/dev/null || true  # its sleep, which would hold our output open
kill "$watchdog" 2>/dev/null || true
[[ -n $sampler ]] && kill "$sampler" 2>/dev/null || true
tail -n 5 "$OUT/dvc.log"

for file in reports/metrics.json reports/report.md reports/timeline.json reports/figures/timeline.png; do
    [[ -f $file ]] && cp "$file" "$OUT/"
done
"$PYTHON" - "$OUT" "$start" "$end" "$status" "$LIMIT_S" "${overrides[@]}" <<'PY'
import json, sys
from pathlib import Path

from transferlab.params import load_params
from transferlab.timeline import gather, records

out, start, end, status, limit, *overrides = sys.argv[1:]
out = Path(out)
if not (out / "timeline.json").exists():  # cut before evaluate: the stages that finished
    timings = load_params().paths.timings
    found = gather(timings, [p.stem for p in timings.glob("*.json")]) if timings.is_dir() else {}
    latest = max(found.values(), key=lambda t: t["started"], default={}).get("run", "")
    found = records(found, latest)  # this run: the one that measured the last stage
    (out / "timeline.json").write_text(json.dumps(found, indent=2))
sm = []
if (out / "gpu.csv").exists():
    rows = [line.split() for line in (out / "gpu.csv").read_text().splitlines()]
    header = next((r for r in rows if r and r[0] == "#" and "sm" in r), None)
    if header:
        column = header.index("sm") - 1  # '#' heads the header row only
        sm = [float(r[column]) for r in rows if r and r[0].isdigit() and r[column] != "-"]
record = {
    "seconds": round(float(end) - float(start), 1),
    "exit": int(status),
    "finished": int(status) == 0,
    "limit_s": int(limit),
    "overrides": overrides[1::2],
    "gpu_samples": len(sm),
    "gpu_busy_share": round(sum(v > 5 for v in sm) / len(sm), 3) if sm else None,
    "gpu_mean_sm": round(sum(sm) / len(sm), 1) if sm else None,
}
(out / "run.json").write_text(json.dumps(record, indent=2) + "\n")
print(json.dumps(record))
PY
exit "$status"
