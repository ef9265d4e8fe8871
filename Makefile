# The two commands a new user runs (see README): `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test install tools lint

$(PY):
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# CPU torch first: a plain `torch` requirement would pull a multi-GB CUDA build.
install: $(PY)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"

demo: install
	bash scripts/demo.sh

tools:
	bash scripts/install-tools.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: install tools lint
	HF_HUB_OFFLINE=1 $(VENV)/bin/pytest
