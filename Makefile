# Two commands a user needs: `make demo` and `make test`. Both create .venv
# when missing and install what they need (idempotent, and they say what
# they install and download: the first run takes a minute or two).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BACKENDS ?= jax torch tensorflow
PYTEST_ARGS ?= --durations=25
# Test processes per backend (pytest-xdist). 0 (default): one process, which
# measured faster on 2 cores (the frameworks already use both); try 2+ on more.
TEST_WORKERS ?= 0
# 1: tests marked backend_free run in the first backend's lane only, and the
# cases of `spread` matrices in one lane each (tests/lanes.py); 0: all in all.
TEST_SPLIT ?= 1
PIP := $(BIN)/python -m pip --disable-pip-version-check
# The CPU build of TensorFlow (the `tensorflow` wheel is 2.5x larger).
TENSORFLOW ?= tensorflow-cpu

# Keras' config (keras.json) stays in the repository unless you chose a KERAS_HOME.
export KERAS_HOME ?= $(CURDIR)/.keras_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_VERBOSITY := error

.PHONY: demo fill-mask test install install-demo assets demo-assets bench clean

# The demo needs nlp4keras with one backend (JAX) and the MiniLM weights.
demo: install-demo demo-assets
	$(BIN)/python examples/sentence_similarity.py

# Our small Chinese BERT (models/zh-bert-tiny, in the repository) fills [MASK]s.
fill-mask: install-demo
	$(BIN)/python examples/fill_mask_chinese.py

LINTED := nlp4keras tests scripts examples benchmarks _nlp4keras_startup.py

# Lint, then the whole suite once per backend; any failure (or no tests:
# pytest's exit code 5) fails.
test: install assets
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	@lane=0; lanes=$(words $(BACKENDS)); for backend in $(BACKENDS); do \
		echo "=== tests on the $$backend backend ==="; \
		split=$$lane/$$lanes; [ "$(TEST_SPLIT)" = 1 ] || split=; \
		KERAS_BACKEND=$$backend NLP4KERAS_TEST_LANE=$$split $(BIN)/python -m pytest \
			-n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS) || exit $$?; \
		lane=$$((lane + 1)); \
	done

install-demo: $(VENV)/.installed-demo
install: $(VENV)/.installed-test

$(BIN)/python:
	@echo "==> creating the virtual environment $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed-demo: pyproject.toml constraints.txt | $(BIN)/python
	@echo "==> installing nlp4keras with the JAX backend into $(VENV) (first time: about 700 MB installed, a minute or two)"
	$(PIP) install --progress-bar on -c constraints.txt -e ".[jax]"
	touch $@

$(VENV)/.installed-test: pyproject.toml constraints.txt | $(BIN)/python
	@echo "==> installing nlp4keras with JAX, PyTorch (CPU), TensorFlow (CPU) and the test tools into $(VENV) (first time: about 2 GB, 2-4 min)"
	$(PIP) install --progress-bar on -c constraints.txt -e ".[jax,torch,test]" $(TENSORFLOW)
	touch $@

demo-assets: install-demo
	$(BIN)/python scripts/fetch_assets.py minilm

assets: install
	$(BIN)/python scripts/fetch_assets.py

bench: install assets
	$(BIN)/python benchmarks/encode.py
	$(BIN)/python benchmarks/tokenize.py

clean:
	rm -rf $(VENV) .keras_home .pytest_cache
