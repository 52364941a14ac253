# Every target installs what it needs into .venv/ first, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint typecheck pytest demo bench soak clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy --strict src tests

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The full-size reliability suites (10,000 creates per provider under faults, kill and resume, >= 10,000 fuzz
# examples); `make test` runs the same tests at a reduced size.
soak: $(STAMP)
	BILLKIT_SOAK=full $(BIN)/pytest -s --show-capture=no tests/reliability tests/test_fuzz.py tests/test_webhook_forgery.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
