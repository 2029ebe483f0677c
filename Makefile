# Relevance Studio — developer commands. `make run` starts everything; `make test` runs the suite.
SHELL := /bin/bash
.DEFAULT_GOAL := run

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The stamp's name carries a hash of the requirement files: unchanged files = nothing to do.
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQ_HASH)
# Local development runs with DEBUG=1 unless the environment says otherwise.
DEV_ENV = DEBUG=$${DEBUG:-1}

.PHONY: install run test migrate demo clean

install: $(STAMP)

# No file prerequisites on purpose: the hash in the name already changes with their content, and a
# checkout that only touches their mtime should not reinstall.
$(STAMP):
	@test -x $(PY) || { echo "make: creating $(VENV) (a Python virtual environment)"; $(PYTHON) -m venv $(VENV); }
	@echo "make: installing requirements-dev.txt into $(VENV) -- the first time takes about 4 minutes and 2 GB (torch, transformers); later runs skip this"
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

migrate: install
	$(DEV_ENV) $(PY) manage.py migrate --noinput

demo: migrate
	$(DEV_ENV) $(PY) manage.py load_demo

run: migrate
	$(DEV_ENV) $(PY) manage.py collectstatic --noinput --verbosity 0
	$(DEV_ENV) $(PY) manage.py load_demo
	$(DEV_ENV) $(PY) -m config.stack

# PYTEST_ARGS narrows a run, e.g. `make test PYTEST_ARGS="tests/stack -m 'not slow'"`.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf var/
