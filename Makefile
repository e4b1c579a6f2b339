# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Everything downloaded is cached: pip wheels (~/.cache/pip), Kafka jars (~/.cache/cityops, ~/.m2),
# npm packages (~/.npm); a second run installs nothing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TSC := tests/tsc/node_modules/.bin/tsc

.PHONY: setup demo test bench stack-up stack-down clean

setup: $(STAMP) $(TSC) jars

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "cityops needs Python >= 3.11 (found $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(TSC): tests/tsc/package.json
	@if [ -f tests/tsc/package-lock.json ]; then npm ci --prefix tests/tsc --no-audit --no-fund --loglevel=error; \
	else npm install --prefix tests/tsc --no-audit --no-fund --loglevel=error; fi
	touch $@

jars: $(STAMP)
	$(BIN)/cityops stack fetch

demo: setup
	$(BIN)/cityops demo

test: setup
	$(BIN)/pytest -q -ra

bench: setup
	$(BIN)/cityops bench all

stack-up: setup
	$(BIN)/cityops stack up

stack-down:
	$(BIN)/cityops stack down

clean:
	-$(BIN)/cityops stack down
	rm -rf .cityops
