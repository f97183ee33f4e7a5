# One-word commands. `make demo` runs the product with demo data; `make test` runs every test.
# With no DATABASE_URL, a project-local PostgreSQL is started in .pgdata/ (scripts/devdb.sh).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The local PostgreSQL's port is derived from this checkout's path, so two clones on one
# machine never collide (54000-54899). Override with PGPORT=….
# (config/settings/base.py computes the same port, so manage.py finds the local cluster unaided.)
PGPORT ?= $(shell $(PYTHON) -c 'import zlib; print(54000 + zlib.crc32(b"$(CURDIR)") % 900)')

ifeq ($(strip $(DATABASE_URL)),)
  EMBEDDED_DB := 1
  export DATABASE_URL := postgres://crm_app@127.0.0.1:$(PGPORT)/crm
  export DATABASE_OWNER_URL := postgres://crm_owner@127.0.0.1:$(PGPORT)/crm
  DATABASE_SUPERUSER_URL ?= postgres://postgres@127.0.0.1:$(PGPORT)/postgres
endif
export CRM_PGPORT := $(PGPORT)

.PHONY: help demo test lint hooks format worker beat bench db db-stop migrate messages browser assets demo-reset serve clean

help:
	@echo "make demo    - install, migrate, seed two demo dealerships, serve http://127.0.0.1:8000"
	@echo "make test    - install what is needed and run the whole test suite"
	@echo "make lint    - ruff (lint + format check), mypy and the import contracts (import-linter)"
	@echo "make hooks   - run the same checks before every git commit (pre-commit)"
	@echo "make worker  - Celery worker        make beat - Celery beat (nightly schedule)"
	@echo "make bench   - benchmarks (not part of the tests)"
	@echo "make db-stop - stop the project-local PostgreSQL"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

db: venv
ifdef EMBEDDED_DB
	@scripts/devdb.sh start
endif
	@if [ -n "$(DATABASE_SUPERUSER_URL)" ]; then PYTHON=$(PY) scripts/db_bootstrap.sh "$(DATABASE_SUPERUSER_URL)" "$$DATABASE_URL" "$$DATABASE_OWNER_URL"; fi

db-stop:
	@scripts/devdb.sh stop

migrate: db
	$(PY) manage.py migrate --noinput

messages: venv
	@command -v msgfmt >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq gettext >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq gettext >/dev/null); } || { echo "Install gettext (msgfmt) to compile translations." >&2; exit 1; }
	@$(PY) manage.py compilemessages --ignore=.venv -v 0

# Debian's chromium drives the browser journeys; a small CJK font makes their screenshots readable.
browser:
	@if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -qi "wenquanyi\|noto sans cjk"; then \
	  echo "Installing Debian's chromium and a CJK font for the browser tests…"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; \
	  else echo "Run: sudo apt-get install chromium fonts-wqy-microhei" >&2; exit 1; fi; fi

# Browser libraries (Chart.js) from the npm registry, pinned by package-lock.json; the app serves
# them from node_modules/ (STATICFILES_DIRS), nothing is loaded from a CDN.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq npm >/dev/null); } || { echo "Install Node.js and npm to fetch the browser libraries." >&2; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

assets: node_modules/.package-lock.json

demo: assets messages migrate
	$(PY) manage.py seed_demo
	@echo ""
	@echo "Serving http://127.0.0.1:8000  (stop with Ctrl-C; 'make db-stop' stops the local database)"
	$(PY) manage.py runserver 127.0.0.1:8000

demo-reset: db
	@echo "Dropping every table of $$DATABASE_OWNER_URL and seeding again…"
	psql "$$DATABASE_OWNER_URL" -v ON_ERROR_STOP=1 -q -c "DROP SCHEMA public CASCADE" -c "CREATE SCHEMA public"
	$(MAKE) demo

serve: assets messages migrate
	$(PY) manage.py runserver 127.0.0.1:8000

# The tenant-isolation suite (every route as every attacker) and the schema conformance run
# (schemathesis over every API operation) are the longest parts by far, so with no PYTEST_ARGS they
# run after the rest, split over two processes (each has its own test DB).
SLOW_TESTS := tests/test_isolation.py tests/test_api_schema_conformance.py
test: db messages browser assets
	@set -o pipefail; export REDIS_URL_FOR_TESTS="$${REDIS_URL:-$$(scripts/devredis.sh url)}" \
	  DATABASE_SUPERUSER_URL="$(DATABASE_SUPERUSER_URL)"; \
	if [ -n "$(PYTEST_ARGS)" ]; then $(PY) -m pytest $(PYTEST_ARGS); \
	else $(PY) -m pytest -n 2 $(addprefix --ignore=,$(SLOW_TESTS)) && $(PY) -m pytest -n 2 $(SLOW_TESTS); fi

# The same four checks run before each commit once `make hooks` installed them (.pre-commit-config.yaml).
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports

hooks: venv
	$(VENV)/bin/pre-commit install

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# With no REDIS_URL, the worker and beat use the machine's Redis or a project-local one.
worker: migrate
	REDIS_URL="$${REDIS_URL:-$$(scripts/devredis.sh url)}" $(VENV)/bin/celery -A config worker --loglevel=INFO

beat: migrate
	REDIS_URL="$${REDIS_URL:-$$(scripts/devredis.sh url)}" $(VENV)/bin/celery -A config beat --loglevel=INFO --schedule=.run/celerybeat-schedule

# `make bench BENCH=segmentation` runs benchmarks/bench_segmentation.py alone.
BENCH ?= *
bench: db
	@for script in benchmarks/bench_$(BENCH).py; do echo "== $$script"; $(PY) $$script || exit 1; done

clean: db-stop
	@scripts/devredis.sh stop
	rm -rf .pgdata .redisdata staticfiles node_modules .pytest_cache .mypy_cache .ruff_cache
