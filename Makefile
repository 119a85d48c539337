# sweeptrainer: every entry point is a make target (`make help` lists them).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# make install uses .venv; set VENV to another folder to install elsewhere, and
# TORCH_INDEX=https://download.pytorch.org/whl/cpu for PyTorch's CPU build where pip would
# otherwise take the CUDA one.

# make install VISION=1: the same venv plus the vision extra (torchvision and timm: the
# TorchVision and Timm models, tests/e2e/test_vision.py, which make test-slow then runs), with
# the torchvision built for its torch (torch 2.X.Y needs torchvision 0.(X+15).Y from the same
# index): torch 2.13.0 + torchvision 0.28.0, checked to load at the end. With TORCH_INDEX both
# come from there (PyTorch's CPU index: the CPU pair). Without it, from PyPI, whose Linux
# torchvision is built for PyPI's CUDA torch (its _C.so needs libtorch_cuda.so): beside the CPU
# wheel torch 2.13.0+cpu that pip finds locally here it fails at import (operator
# torchvision::nms does not exist), and no CPU torchvision is at hand (PyPI has none for Linux
# and no sdist; download.pytorch.org does not resolve from here). So it asks for torch===2.13.0,
# exactly PyPI's CUDA 13 build (==2.13.0 would keep 2.13.0+cpu), which runs on the CPU too:
# measured here, 3 min 14 s and 5.9 GB against 1 min 53 s and 2.1 GB for a plain make install.
# Over a venv made without VISION it replaces the CPU torch; remove the venv to go back.
VISION ?=
WITH_VISION := $(filter-out 0 no false,$(strip $(VISION)))
VISION_PAIR := $(if $(TORCH_INDEX),torch==2.13.0,torch===2.13.0) torchvision==0.28.0
VISION_EXTRA := ,vision
# make install VISION=1 fails unless the pair loads and runs a torchvision operator
VISION_CHECK := import torch, torchvision, timm; torchvision.ops.nms(torch.zeros(1, 4), \
	torch.ones(1), 0.5); print('torch', torch.__version__, '+ torchvision', torchvision.__version__)

RAY_VENV ?= .venv-ray
# setuptools' note that an editable install maps sweeptrainer.conf to conf/ (by design: the
# config library lives at the top); every other warning of the build still shows
QUIET_EDITABLE := PYTHONWARNINGS="ignore:Editable installation"

.PHONY: help install install-ray test test-slow test-all lint format docs bench bench-launchers bench-slurm bench-ray clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

install:  ## create .venv with CPU torch 2.13.0 and sweeptrainer (editable) + dev tools (VISION=1: + torchvision, timm)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(if $(WITH_VISION),$(VISION_PAIR),torch==2.13.0) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(QUIET_EDITABLE) $(BIN)/pip install -q -e '.[dev$(if $(WITH_VISION),$(VISION_EXTRA))]'
	$(if $(WITH_VISION),$(BIN)/python -c "$(VISION_CHECK)")

# Ray apart: hydra-ray-launcher needs cloudpickle<3, hence joblib<1.6, while .venv has joblib 1.6
# and cloudpickle 3. Only what tests/e2e/test_ray.py needs: [dev] would resolve with these pins
# too (joblib 1.5.3), but optuna, mlflow, mkdocs... would double the install for nothing.
install-ray:  ## a second venv with hydra-ray-launcher + ray (~400 MB) for the Ray tests
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/pip install -q --upgrade pip
	$(RAY_VENV)/bin/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(QUIET_EDITABLE) $(RAY_VENV)/bin/pip install -q -e '.[ray,search]' 'pytest>=8'

test:  ## the test suite without the slow end-to-end tests (a few minutes)
	$(BIN)/pytest -m "not slow"

test-slow:  ## the slow end-to-end tests: signals and kills, launchers, torchrun, docs commands
	$(BIN)/pytest -m slow
	@if [ -x $(RAY_VENV)/bin/pytest ]; then $(RAY_VENV)/bin/pytest -m slow tests/e2e/test_ray.py; \
	else echo "note: no $(RAY_VENV): the Ray tests were skipped (make install-ray)"; fi

test-all: test test-slow  ## both (what CI runs)

lint:  ## ruff format check + ruff check + mypy (the package and the Hydra plugin)
	$(BIN)/ruff format --check src tests benches
	$(BIN)/ruff check src tests benches
	$(BIN)/mypy

format:  ## apply ruff format and autofixes
	$(BIN)/ruff format src tests benches
	$(BIN)/ruff check --fix src tests benches

docs:  ## build the documentation site into build/site (offline, warnings are errors)
	$(BIN)/mkdocs build --strict -d build/site

bench:  ## the benchmark table (trainer vs hand-written loop, ~30 min) -> benches/results.md
	$(BIN)/python benches/bench.py

bench-launchers:  ## an 8-run sweep: basic launcher vs joblib with 2 jobs
	$(BIN)/python benches/bench_launchers.py

bench-slurm:  ## an 8-run sweep: basic launcher vs a one-node SLURM cluster it starts (root, apt packages)
	$(BIN)/python benches/bench_slurm.py

bench-ray:  ## an 8-run tiny sweep: basic launcher vs a local Ray (needs make install-ray)
	$(RAY_VENV)/bin/python benches/bench_ray.py

clean:  ## remove build and test leftovers
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache results benches/_work
