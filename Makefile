# Nestlab: `make run` serves the portal with a demo class; `make test` runs the whole suite.
# Both set up everything a fresh Debian machine lacks (virtualenv, requirements, the
# vCenter simulator's toolchain, Chromium for browser tests).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help install system-deps vcsim run test test-unit test-integration test-browser lint format check-deploy clean

help:
	@echo "make run      serve http://127.0.0.1:8000 with the demo class (embedded Redis, SQLite, simulator)"
	@echo "make test     the whole suite (unit, integration, browser)"
	@echo "make lint     ruff check and format check, and the architecture rules (.importlinter)"

$(VENV)/.installed: requirements.txt
	scripts/install-system-deps.sh build
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(VENV)/.installed

system-deps:
	scripts/install-system-deps.sh build vcsim browser ldap saml

vcsim: install
	scripts/install-system-deps.sh vcsim
	$(PY) -m portal.simulator build

run: vcsim
	DEBUG=$${DEBUG:-1} $(PY) manage.py runportal --demo

test: install system-deps vcsim
	$(PY) -m portal.embedded_redis -- $(PY) -m pytest $(PYTEST_ARGS)

test-unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

test-integration: install vcsim
	$(PY) -m portal.embedded_redis -- $(PY) -m pytest tests/integration $(PYTEST_ARGS)

test-browser: install system-deps vcsim
	$(PY) -m portal.embedded_redis -- $(PY) -m pytest tests/browser $(PYTEST_ARGS)

# Provision a class of 30, then 100 students on the simulator and print the figures
# (docs/benchmarks.md). BENCH_ARGS passes options, e.g. BENCH_ARGS="--students 50 --concurrency 8".
BENCH_ARGS ?=
.PHONY: bench
bench: vcsim
	$(PY) bench/provision_class.py $(BENCH_ARGS)

# One class over two vCenters against the same class on one (docs/benchmarks.md);
# TWO_VC_ARGS passes options, e.g. TWO_VC_ARGS="--students 100".
TWO_VC_ARGS ?=
.PHONY: bench-two-vcenters
bench-two-vcenters: vcsim
	$(PY) bench/two_vcenters.py $(TWO_VC_ARGS)

# Live status (docs/benchmarks.md): a power change made in vCenter to the browser, then one
# event to 500 class-table clients. LATENCY_ARGS and FANOUT_ARGS pass options to each, e.g.
# FANOUT_ARGS="--event power --rounds 20".
LATENCY_ARGS ?=
FANOUT_ARGS ?=
.PHONY: bench-live bench-live-latency bench-live-fanout
bench-live: bench-live-latency bench-live-fanout

bench-live-latency: vcsim
	$(PY) bench/live_latency.py $(LATENCY_ARGS)

bench-live-fanout: vcsim
	$(PY) bench/live_fanout.py $(FANOUT_ARGS)

# The REST API under a class (docs/benchmarks.md): 200 students start, snapshot, revert and
# reset their labs at once, against PostgreSQL (database nestlab_loadbench, created and
# dropped) and Redis (database 9, flushed). LOAD_ARGS passes options, e.g.
# LOAD_ARGS="--students 50 --ramp 0" or LOAD_ARGS="--sqlite".
LOAD_ARGS ?=
.PHONY: bench-load
bench-load: vcsim
	$(PY) bench/load_api.py $(LOAD_ARGS)

# Warm start (docs/benchmarks.md): 30 students click Start within one second against a ready
# warm pool; click to lab ready p50/p95/max and the load. WARM_ARGS passes options, e.g.
# WARM_ARGS="--powered-on"; the figures were measured with DATABASE_URL (PostgreSQL), whose row
# locks make the clicks truly concurrent (SQLite serialises every write).
.PHONY: bench-warm
bench-warm: vcsim
	$(PY) bench/warm_start.py $(WARM_ARGS)

# Lab guide checks (docs/benchmarks.md): 30 students click "Check my work", then the class of 30
# labs x 10 checks is graded at once. GUIDE_ARGS passes options, e.g. GUIDE_ARGS="--limits 8 3".
GUIDE_ARGS ?=
.PHONY: bench-guide
bench-guide: vcsim
	$(PY) bench/guide_checks.py $(GUIDE_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=. $(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check-deploy: install
	DJANGO_SETTINGS_MODULE=portal.settings.production SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))') \
	NESTLAB_ENCRYPTION_KEYS=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
	ALLOWED_HOSTS=nestlab.example.edu DATABASE_URL=$${DATABASE_URL:-postgres://nestlab@db.example.edu/nestlab} \
	REDIS_URL=$${REDIS_URL:-redis://redis.example.edu:6379/0} $(PY) manage.py check --deploy --fail-level WARNING

clean:
	rm -rf $(VENV) vcsim/bin staticfiles .pytest_cache
