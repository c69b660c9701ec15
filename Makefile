PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install lock demo lint test bench clean

# requirements.lock pins every package (the test extra's too); pyproject.toml keeps the ranges, and Beat
# itself goes in on top without resolving anything again.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q -e . --no-deps
	touch $(STAMP)

install: $(STAMP)

# After changing a dependency in pyproject.toml: resolve the ranges again into requirements.lock.
lock:
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile -q pyproject.toml --extra test --extra embedded --universal --python-version 3.11 -o requirements.lock
	$(BIN)/uv pip compile -q pyproject.toml -c requirements.lock --generate-hashes --python-platform x86_64-manylinux_2_28 \
		--python-version 3.11 -o requirements.prod.lock

demo: $(STAMP)
	$(BIN)/beat demo

# ruff and mypy read their settings from pyproject.toml; CI runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) .beat
