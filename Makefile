# The two quick-start commands: `make run` and `make test`. Each does its own set-up.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.deps-stamp
# When this make started (seconds): `make run` reports how long getting ready took.
T0 := $(shell date +%s)
ELAPSED = $$(( $$(date +%s) - $(T0) ))

.PHONY: run test setup lint typecheck bench fuzz freeze translations browser worker

$(BIN)/python:
	@echo "==> Creating the virtualenv in $(VENV)"
	$(PY) -m venv $(VENV)

$(STAMP): requirements.txt | $(BIN)/python
	@echo "==> Installing dependencies into $(VENV): the first time, pip takes a few minutes (quietly); later runs skip this"
	@t=$$(date +%s); $(BIN)/pip install -q --disable-pip-version-check -r requirements.txt && \
	  echo "    dependencies installed in $$(( $$(date +%s) - t )) s"
	@touch $(STAMP)

# Two catalogs, each compiled on its own: the site's (translations/) and the console's (translations/console/).
setup: $(STAMP)
	@echo "==> Compiling translations"
	$(BIN)/pybabel -q compile -d translations
	$(BIN)/pybabel -q compile -d translations/console
	@# Bytecode once, here: with PYTHONDONTWRITEBYTECODE set, every process would compile the sources again.
	@$(BIN)/python -m compileall -q -j 0 app.py core gateway website jobs tests bench >/dev/null

# Headless Chromium and its driver for the page tests (Debian packages).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk) >/dev/null; }

# The server, and beside it the job worker when Redis is configured (without Redis the server runs
# the same jobs itself on a timer). Ctrl-C stops both.
run: setup
	@echo "==> Creating or migrating the database (flask --app app init-db)"
	@$(BIN)/flask --app app init-db
	@echo "==> Creating the demo account"
	@$(BIN)/flask --app app demo-account
	@echo "Demo: BYTESPIKE_PAYMENTS_SANDBOX=$${BYTESPIKE_PAYMENTS_SANDBOX:-1} (1: the labelled payment simulator is on; every console page says so)"
	@if [ -n "$$BYTESPIKE_REDIS_URL" ]; then \
	  echo "==> Starting the job worker beside the server (BYTESPIKE_REDIS_URL is set)"; \
	  $(BIN)/flask --app app worker & wpid=$$!; trap 'kill $$wpid 2>/dev/null' EXIT INT TERM; \
	else echo "==> Background jobs run inside the server on a timer (BYTESPIKE_REDIS_URL is not set)"; fi; \
	echo "==> Ready in $(ELAPSED) s. Serving site, console and gateway on http://127.0.0.1:8000 (Ctrl-C stops it)"; \
	BYTESPIKE_PAYMENTS_SANDBOX=$${BYTESPIKE_PAYMENTS_SANDBOX:-1} $(BIN)/gunicorn --bind 127.0.0.1:8000 'app:create_app()'

# The background jobs alone (task polling, holds sweep, alerts, webhook retries, the rate-card refresh).
worker: setup
	$(BIN)/flask --app app worker

# The tests mostly wait on servers and sockets, so several run at once; each test file stays in one
# process (its module fixtures are started once). TEST_WORKERS=0 runs them one by one.
TEST_WORKERS ?= 4
test: setup browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m website.catalog_lint
	$(BIN)/python tools/import_check.py
	$(BIN)/python tools/size_check.py

freeze: setup
	$(BIN)/flask --app app freeze

# PEERS=litellm adds the LiteLLM proxy to the same interleaved run (installed into /tmp/venv-litellm
# on first use); BENCH_ARGS passes anything else to bench/run.py (see bench/README.md).
bench: setup
	$(BIN)/python bench/run.py $(if $(PEERS),--peers $(PEERS)) $(BENCH_ARGS)

# Hostile bodies on every JSON surface of a served app on PostgreSQL: 0 answers >= 500 expected.
fuzz: setup
	$(BIN)/python bench/fuzz.py
