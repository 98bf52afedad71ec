# Two commands a user needs: `make demo` and `make test`. Both create .venv
# when missing and install what they need (idempotent).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS ?= jax torch
PYTEST_ARGS ?=

export KERAS_HOME := $(CURDIR)/.keras_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error

.PHONY: demo test install assets bench clean

demo: install assets
	$(BIN)/python examples/sentence_similarity.py

LINTED := nlp4keras tests scripts examples benchmarks

# Lint, then the whole suite once per backend; any failure (or no tests:
# pytest's exit code 5) fails.
test: install assets
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	@for backend in $(BACKENDS); do \
		echo "=== tests on the $$backend backend ==="; \
		KERAS_BACKEND=$$backend $(BIN)/python -m pytest $(PYTEST_ARGS) || exit $$?; \
	done

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[jax,torch,test]"
	touch $@

assets: install
	$(BIN)/python scripts/fetch_assets.py

bench: install assets
	$(BIN)/python benchmarks/encode.py
	$(BIN)/python benchmarks/tokenize.py

clean:
	rm -rf $(VENV) .keras_home .pytest_cache
