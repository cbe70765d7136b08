# The README's two commands: `make demo` and `make test`. Each does its own set-up first.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint typecheck bench clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(PY) -m diffusellm demo

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check diffusellm tests benchmarks scripts

typecheck: setup
	$(PY) -m pyright

bench: setup
	$(PY) benchmarks/bench_digest.py

clean:
	rm -rf $(VENV) .state .pytest_cache .ruff_cache
