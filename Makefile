# Everything runs inside .venv, created on first use from the hash-pinned lock
# (requirements/dev.txt, made from pyproject.toml by `make lock`).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements/dev.txt
PYBABEL := $(BIN)/pybabel
LOCALES := locales
SOURCES := bot handlers storage
LINTED := $(SOURCES) devkit tests $(wildcard bench scripts)

.PHONY: run test lint typecheck unit demo migrate bench bench-quick lock lock-upgrade audit extract update compile translations-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Exactly the locked versions, each file checked against its hash; pip refuses
# a dependency the lock lacks. The locked pip goes first (it installs the rest
# in half the time the venv's own pip takes). The project itself comes last,
# without dependencies, built by the locked setuptools (no build isolation).
$(STAMP): pyproject.toml $(LOCK) | $(BIN)/python
	@$(BIN)/python scripts/lockfile.py check
	@$(BIN)/python scripts/lockfile.py pin pip > $(VENV)/locked-pip.txt
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r $(VENV)/locked-pip.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Re-resolve the lock after a change to the dependencies in pyproject.toml
# (versions already locked are kept); lock-upgrade takes the newest of all.
lock: | $(BIN)/python
	$(BIN)/python scripts/lockfile.py lock

lock-upgrade: | $(BIN)/python
	$(BIN)/python scripts/lockfile.py lock --upgrade

# Known vulnerabilities in the locked set; says so in one line and passes
# when the advisory service cannot be reached.
audit: $(STAMP)
	$(BIN)/python scripts/lockfile.py audit

run: $(STAMP)
	$(BIN)/intake-bot run

migrate: $(STAMP)
	$(BIN)/intake-bot migrate

demo: $(STAMP)
	$(BIN)/python -m devkit.demo

test: lint unit

unit: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

bench-quick: $(STAMP)
	$(BIN)/python -m bench --quick

# Translations: extract msgids from the code, merge into the catalogues,
# compile .mo files (the bot also compiles the .po files in memory at start).
extract: $(STAMP)
	$(PYBABEL) extract --no-location --sort-by-file -k N_ -k __ -k _ -o $(LOCALES)/messages.pot \
		--project=intake-bot --copyright-holder="intake-bot contributors" $(SOURCES)

update: extract
	$(PYBABEL) update -i $(LOCALES)/messages.pot -d $(LOCALES) -D messages --no-fuzzy-matching --ignore-obsolete

# How many Tajik entries still wait for a native speaker, then the catalogue, glossary
# and screen-length tests.
translations-check: $(STAMP)
	@printf 'Tajik entries still marked "# review:": %s of %s\n' \
		"$$(grep -c '^# review:' $(LOCALES)/tg/LC_MESSAGES/messages.po)" \
		"$$(( $$(grep -c '^msgid ' $(LOCALES)/tg/LC_MESSAGES/messages.po) - 1 ))"
	$(BIN)/python -m pytest -q tests/test_i18n.py tests/test_glossary.py tests/test_screens.py

compile: $(STAMP)
	$(PYBABEL) compile -d $(LOCALES) -D messages --statistics

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
