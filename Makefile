# The two quick-start commands: `make run` and `make test`. Each does its own set-up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-stamp

.PHONY: run test setup lint typecheck bench fuzz freeze translations browser

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.txt
	touch $(STAMP)

setup: $(STAMP)
	$(BIN)/pybabel compile -q -d translations 2>/dev/null || true
	@if [ -d translations/console ]; then $(BIN)/pybabel compile -q -d translations/console 2>/dev/null || true; fi

# Headless Chromium and its driver for the page tests (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk) >/dev/null; }

run: setup
	$(BIN)/flask --app app init-db
	$(BIN)/flask --app app demo-account
	@echo "Demo: BYTESPIKE_PAYMENTS_SANDBOX=$${BYTESPIKE_PAYMENTS_SANDBOX:-1} (1: the labelled payment simulator is on; every console page says so)"
	BYTESPIKE_PAYMENTS_SANDBOX=$${BYTESPIKE_PAYMENTS_SANDBOX:-1} $(BIN)/gunicorn --bind 127.0.0.1:8000 'app:create_app()'

test: setup browser
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

freeze: setup
	$(BIN)/flask --app app freeze

bench: setup
	$(BIN)/python bench/run.py

# Hostile bodies on every JSON surface of a served app on PostgreSQL: 0 answers >= 500 expected.
fuzz: setup
	$(BIN)/python bench/fuzz.py
