#!/usr/bin/env bash
# Shows that the `dvc plots` HTML made with plots/offline.html renders with no network: it
# writes the page with DVC, opens it in headless Chromium with networking cut off, and checks
# that every plot on it drew an SVG chart, with the titles and axis labels of dvc.yaml and
# no script error.
#
#   plots/check_offline.sh            a throwaway sample project: this project's dvc.yaml,
#                                     params.yaml, .dvc/plots templates and .dvc/config,
#                                     with small made-up CSVs in the columns the stages write,
#                                     committed once and then changed; renders
#                                     `dvc plots diff HEAD` (two revisions, the issue's case)
#                                     and `dvc plots show` (the .dvc/config default template)
#   plots/check_offline.sh --project  this project's own `dvc plots show` (after a run)
#
# Needs Chromium (chromium, chromium-browser or google-chrome, or CHROMIUM=/path): a manual
# and release check, not part of `make test` (CI installs no browser). The network is cut
# with `unshare -n` (a network namespace with no interfaces) where the kernel allows it;
# otherwise Chromium is pointed at a dead proxy and a resolver that resolves nothing, so any
# fetch fails either way. KEEP=DIR keeps the pages, DOM dumps and screenshots in DIR.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${1:---sample}
case $MODE in --sample | --project) ;; *) sed -n '2,20p' "$0" >&2; exit 2 ;; esac

DVC=${DVC:-$ROOT/.venv/bin/dvc}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
[ -x "$DVC" ] || DVC=$(command -v dvc) || { echo "FAIL: no dvc (make install)" >&2; exit 1; }
[ -x "$PYTHON" ] || PYTHON=$(command -v python3)
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser ||
    command -v google-chrome || true)}
[ -n "$CHROMIUM" ] || { echo "FAIL: no Chromium (apt-get install chromium)" >&2; exit 1; }

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=${KEEP:-$WORK/out}
mkdir -p "$OUT"

# Cut the network: a fresh network namespace if we may make one, else dead-end flags.
NET=(--proxy-server=127.0.0.1:9 "--host-resolver-rules=MAP * ~NOTFOUND")
if unshare -n true 2>/dev/null; then
    ISOLATE=(unshare -n) NETWORK="unshare -n (no interfaces) + dead proxy"
elif unshare -rn true 2>/dev/null; then
    ISOLATE=(unshare -rn) NETWORK="unshare -rn (no interfaces) + dead proxy"
else
    ISOLATE=() NETWORK="dead proxy + resolver (no network namespace allowed here)"
fi

# The sample project: the files that define the plots, and CSVs shaped like the stages'.
sample_project() {  # builds $WS and leaves the shell in it
    local ws=$WORK/sample
    WS=$ws
    mkdir -p "$ws/.dvc" "$ws/plots"
    cp "$ROOT/dvc.yaml" "$ROOT/params.yaml" "$ws/"
    cp -r "$ROOT/.dvc/plots" "$ws/.dvc/"
    [ -f "$ROOT/.dvc/config" ] && cp "$ROOT/.dvc/config" "$ws/.dvc/config"
    cp -r "$ROOT/plots/vendor" "$ROOT/plots/offline.html" "$ws/plots/"
    cd "$ws"
    git init -q . && git config user.email check@localhost && git config user.name check
    printf '/cache\n/tmp\n' > .dvc/.gitignore
    "$PYTHON" - <<'EOF'
import csv, math
from pathlib import Path
import yaml
params = yaml.safe_load(open("params.yaml"))
paths = params["paths"]
shots = [1, 5, 10, 25, 270]  # 270: "all", the largest class's count (report.shot_counts)

def curve(path, series):
    path = Path(path); path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["shots", *[f"{s}{x}" for s in series for x in ("", "_std")]])
        for n in shots:
            row = [n]
            for i, s in enumerate(series):
                acc = min(0.95, 0.25 + 0.1 * math.log(n) + 0.05 * (len(series) - i))
                row += [f"{acc:.6f}", f"{0.04 / math.sqrt(n):.6f}"]
            w.writerow(row)

for probe in ("linear", "knn"):
    curve(f"{paths['curves']}/{probe}/data_efficiency.csv",
          [f"{k}_{probe}" for k in ("pretrained", "random_init", "raw_pixels")])
curve(f"{paths['curves_finetune']}/data_efficiency.csv", params["curves"]["finetune"])
classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"]
methods = params["finetune"]["strategies"] + params["finetune"]["from_probe"]
for name, start in (("train_loss", 1.6), ("val_accuracy", 0.55)):  # every method in one
    p = Path(paths["plots"]) / f"{name}.csv"; p.parent.mkdir(parents=True, exist_ok=True)
    step = -0.3 if name == "train_loss" else 0.08
    p.write_text(f"epoch,method,{name}\n" + "".join(
        f"{e},{m},{start + 0.05 * i + step * e:.6f}\n"
        for i, m in enumerate(methods) for e in (0, 1, 2, 3)))
p = Path(paths["plots"]) / "backbones.csv"  # each accuracy, then its interval
p.write_text("backbone,ms_per_image,probe_accuracy,probe_accuracy_low,probe_accuracy_high,"
             "knn_accuracy,knn_accuracy_low,knn_accuracy_high\n"
             "lite0,3.165,0.827,0.8128,0.8404,0.8137,0.7993,0.8275\n"
             "lite1,3.319,0.841,0.8274,0.8539,0.824,0.8099,0.8375\n")
for m in ["probe", "knn", *methods]:
    p = Path(paths["plots"]) / "confusion" / f"{m}.csv"; p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text("actual,predicted\n" + "".join(
        f"{a},{classes[(i + j) % len(classes)] if j % 4 == 0 else a}\n"
        for i, a in enumerate(classes) for j in range(8)))
EOF
    git add -A . && git commit -qm "sample plots" >/dev/null
    # A second revision: every curve a little higher, so the diff has two lines per series.
    "$PYTHON" - <<'EOF'
import csv
from pathlib import Path
for path in Path("reports").rglob("*.csv"):
    rows = list(csv.reader(path.open()))
    if rows[0][:1] == ["actual"]:
        continue
    for row in rows[1:]:
        for i in range(1, len(row)):
            if not rows[0][i].endswith("_std") and rows[0][i] != "method":
                row[i] = f"{float(row[i]) * 1.05:.6f}"
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
EOF
}

# render NAME DIR: opens DIR/index.html offline; checks it; prints one line.
render() {
    local name=$1 page=$2/index.html
    [ -f "$page" ] || { echo "FAIL [$name]: DVC wrote no $page" >&2; return 1; }
    if grep -Eq '<script[^>]+src="https?:' "$page"; then
        echo "FAIL [$name]: $page loads scripts from the network:" >&2
        grep -Eo '<script[^>]+src="https?:[^"]*"' "$page" >&2
        return 1
    fi
    local plots
    plots=$(grep -c "vegaEmbed('#" "$page" || true)
    "${ISOLATE[@]}" timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-dev-shm-usage --no-first-run --disable-extensions --disable-sync \
        --disable-background-networking --disable-component-update "${NET[@]}" \
        --enable-logging=stderr --v=0 --virtual-time-budget=20000 \
        --window-size=1400,2400 --dump-dom "file://$page" \
        > "$OUT/$name.dom.html" 2> "$OUT/$name.chromium.log" || true
    "${ISOLATE[@]}" timeout 180 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-dev-shm-usage --no-first-run --disable-extensions --disable-sync \
        --disable-background-networking --disable-component-update "${NET[@]}" \
        --virtual-time-budget=20000 --window-size=1400,2400 \
        --screenshot="$OUT/$name.png" "file://$page" > /dev/null 2>&1 || true
    "$PYTHON" - "$name" "$plots" "$OUT" "$NETWORK" <<'EOF'
import re, sys
from pathlib import Path
name, plots, out, network = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
dom = (out / f"{name}.dom.html").read_text(errors="replace")
log = (out / f"{name}.chromium.log").read_text(errors="replace")
charts = len(re.findall(r'<svg[^>]*class="marks"', dom))
problems = []
if plots == 0:
    problems.append("the page holds no plot")
if charts < plots:
    problems.append(f"only {charts} of {plots} plots drew an SVG chart")
if "Vega did not load" in dom:
    problems.append("the vendored Vega scripts did not load")
errors = [l for l in log.splitlines() if "CONSOLE" in l and re.search(r"Uncaught|Error", l)]
if errors:
    problems.append("script errors:\n  " + "\n  ".join(errors[:5]))
for text in ("train images per class (log scale)", "test accuracy", "Data efficiency: kNN",
             "Training loss per epoch, every fine-tuned method", "Confusion matrix (test split)",
             "Backbones: linear-probe test accuracy against extraction cost", "series"):
    if f">{text}<" not in dom:
        problems.append(f"no text {text!r} in the drawn charts")
blank = None
try:
    from PIL import Image
    img = Image.open(out / f"{name}.png").convert("L")
    lo, hi = img.getextrema()
    blank = hi - lo < 16
except Exception as exc:  # no screenshot or no Pillow: the DOM checks above still stand
    print(f"  [{name}] screenshot not checked: {exc}")
if blank:
    problems.append("the screenshot is blank")
if problems:
    print(f"FAIL [{name}]: " + "; ".join(problems))
    sys.exit(1)
marks = len(re.findall(r'<path[^>]*aria-roledescription="line mark"', dom))
print(f"OK [{name}]: {charts}/{plots} plots drew SVG charts offline ({network}); "
      f"{marks} line marks, titles and axis labels present, no script error, "
      f"screenshot {'not blank' if blank is False else 'unchecked'}")
EOF
}

status=0
if [ "$MODE" = --project ]; then
    cd "$ROOT"
    "$DVC" plots show --html-template "$ROOT/plots/offline.html" -o dvc_plots > /dev/null
    cp "$ROOT/dvc_plots/index.html" "$OUT/project.index.html"
    render project "$ROOT/dvc_plots" || status=1
else
    sample_project
    ws=$WS
    "$DVC" plots diff HEAD --html-template plots/offline.html -o dvc_plots > /dev/null
    render diff "$ws/dvc_plots" || status=1
    cp "$ws/dvc_plots/index.html" "$OUT/diff.index.html"
    rm -rf dvc_plots
    "$DVC" plots show -o dvc_plots > /dev/null  # the template from .dvc/config, if set
    if grep -q 'plots/vendor/vega.min.js' dvc_plots/index.html; then
        render show-default "$ws/dvc_plots" || status=1
    else
        echo "FAIL [show-default]: plain dvc plots show does not use plots/offline.html" \
            "(dvc config plots.html_template ../plots/offline.html)"
        status=1
    fi
    cp "$ws/dvc_plots/index.html" "$OUT/show.index.html"
fi
[ -n "${KEEP:-}" ] && echo "pages, DOM dumps, Chromium logs and screenshots: $OUT"
exit $status
