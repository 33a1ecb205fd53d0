# Two commands for users: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
FMNIST_DIR := /usr/share/datasets/fashion-mnist
FMNIST_PKG := dataset-fashion-mnist
# Taken from this machine's local disk (pip's configured sources); override for another platform.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
UV_PIN ?= uv==0.13.9

# make results [EXP=name] [BASELINE=rev]: what a run concluded and where its time went.
# make compare [EXPS="a b"]: experiments side by side, the params that differ first.
.PHONY: results compare run run-data test test-fast test-full bench format lint install install-dev data clean

# dvc runs each stage (`python -m transferlab.runner.launch …`) through the shell: the
# venv's python must come first on PATH, as `source .venv/bin/activate` would put it.
export PATH := $(abspath $(BIN)):$(PATH)

run: install run-data
	$(BIN)/dvc repro

# Fashion-MNIST only where params.yaml reads it: your own images need no Debian package.
run-data: install
	@if [ "$$($(BIN)/python -c 'from transferlab.params import load_params; \
		print(load_params().data.source)' 2>/dev/null)" = fashion-mnist ]; then \
		$(MAKE) -s data; fi

results: install
	$(BIN)/python -m transferlab.commands.results $(EXP) $(if $(BASELINE),--baseline $(BASELINE))

compare: install
	$(BIN)/python -m transferlab.commands.compare $(EXPS)

# Two test processes (pytest-xdist): most of a test's time is a stage process starting, one
# core's work, so two share the machine's two cores. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

test: install-dev data
	$(BIN)/pytest -n $(TEST_WORKERS)

test-fast: install-dev data
	$(BIN)/pytest -m "not slow and not distributed"

test-full: test

# `make bench` times `python -m bench speed`; BENCH picks another sub-command and flags,
# e.g. make bench BENCH="pipeline -S finetune.epochs=1" (python -m bench --help lists them).
bench: install data
	$(BIN)/python -m bench $(or $(BENCH),speed)

format: install-dev
	$(BIN)/ruff format stages transferlab bench tools tests
	$(BIN)/ruff check --fix stages transferlab bench tools tests

lint: install-dev
	$(BIN)/ruff format --check stages transferlab bench tools tests
	$(BIN)/ruff check stages transferlab bench tools tests

install: $(STAMP)
install-dev: $(DEV_STAMP)

# uv, from pip's own sources (tools/uv_install.py), installs in about half pip's time.
# torch and torchvision are named first so the pinned builds are taken, from local disk here.
$(STAMP): pyproject.toml tools/uv_install.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q $(UV_PIN)
	$(BIN)/python tools/uv_install.py $(TORCH_PINS)
	$(BIN)/python tools/uv_install.py -e .
	touch $(STAMP)

# The test tools, and peft (the oracle the LoRA adapter is tested against), for make test
# only: make run does not pay for them.
$(DEV_STAMP): $(STAMP)
	$(BIN)/python tools/uv_install.py -e ".[dev]"
	touch $(DEV_STAMP)

# The embedded default data set, from Debian's package; other sources need nothing here.
data:
	@if [ -f $(FMNIST_DIR)/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing $(FMNIST_PKG) with apt-get"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(FMNIST_PKG); \
	else \
		echo "Fashion-MNIST is missing. Install it with:"; \
		echo "    sudo apt-get install $(FMNIST_PKG)"; \
		exit 1; \
	fi

# Only what the stages generate (paths.* in dvc.yaml's vars) and caches: never data/raw/, where
# users keep their images, nor anything else DVC tracks as an input.
clean: install
	$(BIN)/python -m transferlab.commands.clean
	rm -rf dvc_plots .pytest_cache
