# Sourced by gpu_run.sh and dvc_run.sh (here, in bench/device/), from the repository
# root, with PYTHON set.

# install_wheels SITE WHEEL...: carried wheels into SITE, first on PYTHONPATH and PATH.
install_wheels() {
    local site=$1 wheel
    shift
    (($#)) || return 0
    # If pip is missing, a wheel is a zip file and unpacks the same.
    "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" "$@" ||
        for wheel in "$@"; do "$PYTHON" -m zipfile -e "$wheel" "$site"; done
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}" PATH="$site/bin:$PATH"
}

# full_data_overrides: bench/full_data.txt (the full-data configuration of docs/scaling.md; users
# read it too, so it stays beside the bench) as `-S key=value` arguments, appended to the
# array `overrides`.
full_data_overrides() {
    local kv
    while read -r kv; do
        if [[ $kv && $kv != \#* ]]; then overrides+=(-S "$kv"); fi
    done <bench/full_data.txt
}
