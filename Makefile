# One entry point for people and CI. `make run` and `make test` set up from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
SHARED_DATA := ../shared/data/wikipedia-movies.json.gz
SAMPLE_DATA := movies/fixtures/sample-movies.json
# The demo runs with development settings; production settings live in deploy/.
DEV_ENV := DEBUG=1 API_PUBLIC_URL=http://127.0.0.1:8080

.PHONY: run setup data test lint bench bench-quick clean

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

setup: $(INSTALLED)

## run: migrate, load the catalogue, create a demo curator, serve admin + API
run: data
	$(DEV_ENV) $(BIN)/python manage.py collectstatic --no-input --verbosity 0
	$(DEV_ENV) $(BIN)/python manage.py create_demo_curator
	@echo "Admin (Gunicorn): http://127.0.0.1:8000/admin/   API (aiohttp): http://127.0.0.1:8080/api/docs"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(DEV_ENV) $(BIN)/honcho start --procfile Procfile

## data: migrate and import the shared Wikipedia file, or the bundled sample without it
data: $(INSTALLED)
	$(DEV_ENV) $(BIN)/python manage.py migrate --no-input
	if [ -f $(SHARED_DATA) ]; then \
		$(DEV_ENV) $(BIN)/python manage.py import_movies $(SHARED_DATA); \
	else \
		$(DEV_ENV) $(BIN)/python manage.py import_movies $(SAMPLE_DATA); \
	fi

## test: the whole suite on the database DATABASE_URL names (SQLite without it)
test: $(INSTALLED)
	$(BIN)/pytest

## lint: ruff and mypy, as CI runs them
lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(DEV_ENV) $(BIN)/mypy .

## bench: the wrk comparison of Django (Gunicorn: WSGI, ASGI, DRF) and aioapi (aiohttp) on PostgreSQL
bench: $(INSTALLED)
	$(BIN)/python -m bench

bench-quick: $(INSTALLED)
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .mypy_cache .ruff_cache
