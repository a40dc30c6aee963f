# Everything runs inside .venv, created on first use from pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYBABEL := $(BIN)/pybabel
LOCALES := locales
SOURCES := bot handlers storage
LINTED := $(SOURCES) devkit tests $(wildcard bench scripts)

.PHONY: run test lint typecheck unit demo migrate bench bench-quick extract update compile translations-check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

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
