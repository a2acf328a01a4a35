# Wardwise: `make demo` runs the simulated hospital, `make test` runs every check CI runs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Browser libraries (Leaflet, Chart.js) from the pinned package-lock.json, served as static files.
NODE_STAMP := node_modules/.installed
# Debian packages the project needs beyond a stock machine of this kind (browser tests; the
# MQTT broker the gateway bridge is tested against).
APT_PACKAGES := chromium chromium-driver mosquitto

TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/wardwise
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
DEMO_PORT ?= 8000

.PHONY: install node demo test lint security format services bench bench-accuracy bench-worker bench-engine bench-ingest bench-coldchain bench-catchup migrate apt screenshots clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $(NODE_STAMP)

install: $(STAMP) $(NODE_STAMP)

node: $(NODE_STAMP)

apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then apt-get update -qq && apt-get install -y -qq $$missing; fi

services:
	scripts/ensure-services.sh

migrate: $(STAMP)
	$(BIN)/python manage.py migrate --noinput

## The demo: embedded defaults (SQLite, in-process channel layer and tasks), demo hospital loaded.
demo: $(STAMP) $(NODE_STAMP)
	DEBUG=true $(BIN)/python manage.py demo --port $(DEMO_PORT)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Security linters (docs/security.md): bandit on the project's code (config: pyproject.toml
## [tool.bandit]), pip-audit on the pinned runtime requirements against PyPI's advisory data.
## PIP_AUDIT_ARGS=--strict also fails when a dependency could not be looked up (PyPI's per-version
## JSON API unreachable): use it where that API answers.
PIP_AUDIT_ARGS ?=
security: $(STAMP)
	$(BIN)/bandit -c pyproject.toml -r . -q
	$(BIN)/pip-audit -r requirements.txt --vulnerability-service pypi --progress-spinner off $(PIP_AUDIT_ARGS)

## Every check CI runs, against the real PostgreSQL and Redis on 127.0.0.1.
test: $(STAMP) $(NODE_STAMP) apt services lint security
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest

## Screenshots of every page, desktop and phone, into docs/screenshots/ (demo data, SQLite).
screenshots: $(STAMP) $(NODE_STAMP) apt
	$(BIN)/python -m web.screenshots

bench: bench-accuracy

bench-accuracy: $(STAMP)
	$(BIN)/python -m bench.accuracy

## End-to-end load on the real stack (PostgreSQL and Redis on 127.0.0.1); see docs/performance.md.
bench-load: $(STAMP) services
	$(BIN)/python -m bench.load $(BENCH_LOAD_ARGS)

## Pipeline worker capacity (readings per CPU-second), defaults vs quiet solving.
bench-worker: $(STAMP) services
	$(BIN)/python -m bench.worker --engine quiet_solve_max_s=6

## The localization engine alone (CPU per reading and per position), no services; see bench/README.md.
bench-engine: $(STAMP)
	$(BIN)/python -m bench.engine

## CPU of one RSSI ingestion request (8, 40, 80 readings), in-process; see bench/README.md.
bench-ingest: $(STAMP) services
	$(BIN)/python -m bench.ingest

## Cold chain under load: 2,000 sensors every 10 s plus RSSI load; see docs/cold-chain.md.
bench-coldchain: $(STAMP) services
	$(BIN)/python -m bench.coldchain $(BENCH_COLDCHAIN_ARGS)

## A gateway's spooled hour of outage drained by the scanner agent's uploader; see docs/scanner-agent.md.
bench-catchup: $(STAMP) services
	$(BIN)/python -m bench.catchup

clean:
	rm -rf $(VENV) node_modules var staticfiles .pytest_cache .ruff_cache
