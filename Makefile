# make run: set up .venv and write a one-off briefing with the shipped config.toml.
# make test: set up .venv (and Chromium and PostgreSQL for the tests) and run the whole test suite;
# the PostgreSQL tests fail there, rather than skip, when PostgreSQL cannot be found.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test setup system-deps bench docs clean

$(BIN)/briefings: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

setup: $(BIN)/briefings

run: setup
	$(BIN)/briefings --config config.toml run

system-deps:
	@sh .ci/system-deps

test: setup system-deps
	BRIEFINGS_REQUIRE_POSTGRES=1 $(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/run_all.py

docs: setup
	$(BIN)/python tools/update_readme.py

clean:
	rm -rf $(VENV) archive state .pytest_cache test-artifacts
