# The README's commands. `make demo` and `make test` do all the set-up on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-busy unit integration lint up down bench docs clean lock

# Every package at the version in requirements.lock (the extras dev, embedded-mongo and docs
# included), then the project itself; pip check fails if the lock misses a requirement.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip check
	touch $@

# Refresh the lock after changing a requirement in pyproject.toml: pins already in the lock are
# kept; `make lock UPGRADE=--upgrade` moves every package to the newest release its range allows.
LOCK_EXTRAS := --extra dev --extra embedded-mongo --extra docs
lock:
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(LOCK_EXTRAS) $(UPGRADE) --python-version 3.11.7 \
		--python-platform x86_64-unknown-linux-gnu --annotation-style line \
		--custom-compile-command "make lock" -o requirements.lock

setup: $(BIN)/.installed

demo: setup
	$(BIN)/parivision demo --until-done

# Two pytest workers (pytest-xdist), each with its own services; a file runs whole on one, so a
# file's fixtures (the three-broker cluster) start once.  24 min here against 35 in one process.
TEST_WORKERS ?= 2

test: setup
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The suite with two CPU-bound processes spinning beside it, as on a user's busy laptop.
test-busy: setup
	$(BIN)/python -m tests.busy

unit: setup
	$(BIN)/pytest -m "not integration"

integration: setup
	$(BIN)/pytest -m integration

lint: setup
	$(BIN)/ruff check .

up: setup
	$(BIN)/parivision up

down: setup
	$(BIN)/parivision down

# The documentation site (mkdocs.yml, docs/) into site/.  --strict fails on any warning: a page
# missing from the nav, a link to a file or an anchor that is not there.  The variable only hides
# Material's notice about its successor, which is not about these pages.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: setup
	$(BIN)/python bench/model_quality.py
	$(BIN)/python bench/stream_throughput.py

clean:
	-$(BIN)/parivision down
	rm -rf .parivision
