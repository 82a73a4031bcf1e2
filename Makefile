# digest: `make demo` runs the whole pipeline on embedded defaults, `make test` the suite.
# Both create .venv and install what they need; only Python >= 3.11 and make are assumed.

PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench smtp-sink chromium bounce-test-deps axe clean distclean help

help:
	@echo "make demo   - init SQLite under var/, import seeds/, build and send to a local Maildir"
	@echo "make test   - ruff (lint + format check), mypy, then pytest (SQLite; PostgreSQL too"
	@echo "              when DIGEST_TEST_DATABASE_URL is set)"
	@echo "make bench  - CLI start-up (digest --version/--help vs python -c 'import click'),"
	@echo "              per-recipient message cost (MIME bytes vs EmailMessage), then a whole"
	@echo "              digest send (CLI, 4 connections) to 10k, 20k and 100k subscribers through"
	@echo "              a local SMTP sink vs a ceiling measured in the same run (4 processes,"
	@echo "              pre-built bytes, pipelined), the raw and naive senders, peak RSS, ledger"
	@echo "              creation, personal digests (10k subscribers over 50 variants: render time,"
	@echo "              per-recipient cost vs one variant's), and a 100k-row subscriber CSV import"
	@echo "              vs a row-by-row reference"
	@echo "make run    - web, clock, worker and a capture SMTP sink with honcho (Procfile.dev)"
	@echo "make clean  - remove var/ (demo database and Maildir)"

$(BIN)/python:
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "digest needs Python >= 3.11, found " + sys.version.split()[0] + " (run: make PY=python3.11 ...)")'
	@$(PY) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv module missing; installing Debian's python3-venv"; \
	  rm -rf $(VENV); \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q python3-venv && $(PY) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $@

demo: $(VENV)/.installed
	$(BIN)/digest demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

# The browser test drives Debian's chromium (playwright's own download does not work here).
chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "installing Debian's chromium for the browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

# The bounce tests run Debian's dovecot as a local IMAP server and compare the
# parser with Debian's python3-flufl.bounce on the bounce samples it ships.
bounce-test-deps:
	@{ command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ]; } \
	  && [ -d /usr/lib/python3/dist-packages/flufl/bounce/tests/data ] || { \
	  echo "installing Debian's dovecot-imapd and python3-flufl.bounce for the bounce tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q \
	    dovecot-imapd python3-flufl.bounce; }

# axe-core (npm) for the accessibility checks in the browser tests; kept under .venv/, never committed.
AXE := $(VENV)/axe/axe.min.js
axe: $(AXE)
$(AXE):
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing Debian's npm for axe-core"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q npm; }
	rm -rf $(VENV)/axe && mkdir -p $(VENV)/axe
	cd $(VENV)/axe && npm pack axe-core@4 --silent >/dev/null && tar -xzf axe-core-*.tgz package/axe.min.js
	mv $(VENV)/axe/package/axe.min.js $@ && rm -rf $(VENV)/axe/package $(VENV)/axe/axe-core-*.tgz

pytest: $(VENV)/.installed-test chromium bounce-test-deps axe
	$(BIN)/pytest

# bench_send wants Postfix's smtp-sink (falls back to an aiosmtpd sink without it).
smtp-sink:
	@[ -x /usr/sbin/smtp-sink ] || command -v smtp-sink >/dev/null 2>&1 || { \
	  echo "installing Debian's postfix for smtp-sink"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q postfix; } \
	  || echo "postfix not installed; bench_send uses an aiosmtpd sink"

bench: $(VENV)/.installed smtp-sink
	$(BIN)/python bench/bench_startup.py
	$(BIN)/python bench/bench_mime.py
	$(BIN)/python bench/bench_send.py
	$(BIN)/python bench/bench_variants.py
	$(BIN)/python bench/bench_import.py

test: lint typecheck pytest

# The Procfile processes on embedded defaults (SQLite under var/, capture SMTP sink on :1025).
run: $(VENV)/.installed
	$(BIN)/digest init
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho -f Procfile.dev start

clean:
	rm -rf var

distclean: clean
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
