# collab: everyday commands. Every target works on a fresh clone: the virtual
# environment and the npm packages the tests drive are created on first use.
#
#   make run        serve on http://127.0.0.1:8080 with the embedded default (SQLite)
#   make test       install the project + dev tools, then run the whole suite
#   make lint       ruff check (and `make format-check` for ruff format --check)
#   make typecheck  mypy --strict over the packages and tests
#   make bench      every benchmark scenario vs the stock y-websocket server,
#                   capacity included; writes docs/benchmarks.md (needs Postgres,
#                   Redis, Node.js)
#   make bench-quick  the same at smoke sizes, report in a temporary directory
#   make bench-capacity  only the capacity scenarios (connections, idle rooms,
#                   keep-alive, log size) at full size, report in a temporary directory
#   make clean      remove the virtual environment, caches and the npm packages
#
# Extra pytest arguments: make test ARGS="-k readyz -x"

PYTHON ?= python3
VENV ?= .venv
ARGS ?=

BIN := $(VENV)/bin
# Stamps record what has been installed; they are older than pyproject.toml
# exactly when the dependencies may have changed, so make reinstalls then.
RUNTIME_STAMP := $(VENV)/.installed-runtime
DEV_STAMP := $(VENV)/.installed-dev
# npm projects the tests use: the Yjs client harness and the demo's sources
# (a test rebuilds the committed bundle from them and compares); and the stock
# Yjs client the benchmarks drive.
NPM_DIRS := tests/js demo bench/js

# The npm packages are optional: installed only where Node.js and npm exist, for
# the directories that have a lockfile in the tree.
HAVE_NODE := $(and $(shell command -v node 2>/dev/null),$(shell command -v npm 2>/dev/null))
NPM_LOCKS := $(wildcard $(addsuffix /package-lock.json,$(NPM_DIRS)))
JS_DEPS := $(if $(HAVE_NODE),$(NPM_LOCKS:/package-lock.json=/node_modules/.installed))

.PHONY: run install install-dev js-deps test lint format format-check typecheck check clean \
	bench bench-quick bench-capacity

run: $(RUNTIME_STAMP)
	$(BIN)/collab migrate
	exec $(BIN)/collab serve

install: $(RUNTIME_STAMP)

install-dev: $(DEV_STAMP)

js-deps: $(JS_DEPS)
ifeq ($(HAVE_NODE),)
	@echo "make: Node.js/npm not found: skipping npm packages (their tests skip)"
endif

test: $(DEV_STAMP) js-deps
	$(BIN)/python -m pytest $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

format: $(DEV_STAMP)
	$(BIN)/ruff format .

format-check: $(DEV_STAMP)
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(DEV_STAMP) js-deps
	$(BIN)/python -m bench.suite --out docs/benchmarks.md

bench-quick: $(DEV_STAMP) js-deps
	$(BIN)/python -m bench.suite --quick --out "$$(mktemp -d)/benchmarks.md"

# The capacity part of the suite alone (idle connections and reconnect storms
# against the stock server, idle rooms, keep-alive, log and snapshot sizes); each
# scenario's JSON lines are echoed as it ends.
bench-capacity: $(DEV_STAMP) js-deps
	$(BIN)/python -m bench.suite --only capacity --out "$$(mktemp -d)/benchmarks.md"

# pip >= 25.1 understands `--group` (PEP 735 dependency groups); the pip that
# `venv` bundles with older Pythons does not, so upgrade it once at creation.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $@ $(RUNTIME_STAMP)

%/node_modules/.installed: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund
	touch $@

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(addsuffix /node_modules,$(NPM_DIRS))
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
