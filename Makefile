# Every target installs what it needs into .venv/ first, so a fresh clone needs only python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

PLAIN := build/plain-venv

# the lowest and the highest Python billkit supports: `make pythons` runs the core suite on each one found
PYTHONS ?= 3.10 3.13

.PHONY: install test lint typecheck pytest pytest-httpx2 plain-install pythons demo bench soak scale clean

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

# the DBOS scale test needs a PostgreSQL server: tests/reliability/postgres.py installs (Debian's package) and
# starts one; here a missing server fails the run instead of skipping the test
pytest: $(STAMP)
	BILLKIT_REQUIRE_POSTGRES=1 $(BIN)/pytest

# What a user gets from a plain `pip install billkit` (no dev extras, so no pytest): billkit and billkit.testing
# import, and the demo and the resume-in-a-worker example run. The project's own venv always has the dev extras.
plain-install:
	rm -rf $(PLAIN)
	$(PYTHON) -m venv $(PLAIN)
	$(PLAIN)/bin/python -m pip install --quiet --upgrade pip
	$(PLAIN)/bin/python -m pip install --quiet .
	cd build && plain-venv/bin/python -c "import billkit, billkit.testing, sys; \
		assert 'pytest' not in sys.modules, 'billkit.testing imported pytest'; \
		billkit.testing.sandbox('accepteasy'); print('plain install: billkit', billkit.__version__, 'imports')"
	$(PLAIN)/bin/python examples/demo.py > build/plain-demo.log
	$(PLAIN)/bin/python examples/resume_in_worker.py > build/plain-resume.log
	$(PLAIN)/bin/python examples/batch_from_file.py > build/plain-batch.log
	! $(PLAIN)/bin/billkit --help > build/plain-cli.log 2>&1
	grep -q "needs the cli extra" build/plain-cli.log
	@echo "plain install: the demo, resume_in_worker and batch_from_file ran; the billkit command asks for [cli]"

# the same suites again on httpx2 (billkit.httpstack): every HTTP client billkit makes is an httpx2 one, sandboxes
# reached through the bridge; tests that pass their own httpx client or transport stay on httpx, as users' do
pytest-httpx2: $(STAMP)
	@if $(BIN)/python -c "import sys; sys.exit(sys.version_info < (3, 11))"; then \
		BILLKIT_HTTP_STACK=httpx2 $(BIN)/pytest tests --ignore=tests/reliability --ignore=tests/contrib \
			--ignore=tests/test_typing.py && echo "pytest-httpx2: the suites passed on httpx2"; \
	else echo "pytest-httpx2: skipped, httpx2 needs Python 3.11+ (this venv: $$($(BIN)/python -V))"; fi

# The core suite (all but tests/reliability) on each of $(PYTHONS) found on PATH or through pyenv, each in its own
# venv under build/ (made again when pyproject.toml changes); says which ran and which were not found.
pythons:
	scripts/pythons.sh $(PYTHONS)

test: lint typecheck pytest pytest-httpx2 plain-install pythons

demo: $(STAMP)
	$(BIN)/python examples/demo.py

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run.py

# The full-size reliability suites (10,000 creates per provider under faults, kill and resume, >= 10,000 fuzz
# examples); `make test` runs the same tests at a reduced size.
soak: $(STAMP)
	BILLKIT_SOAK=full $(BIN)/pytest -s --show-capture=no tests/reliability tests/test_fuzz.py tests/test_webhook_forgery.py

# Scale-out on DBOS and PostgreSQL at full size: 4 worker processes, 5,000 bills per provider, one worker killed;
# then the throughput with 1, 2 and 4 workers (printed). `make test` runs the first at 150 bills per provider.
scale: $(STAMP)
	BILLKIT_SCALE=full BILLKIT_REQUIRE_POSTGRES=1 $(BIN)/pytest -s --show-capture=no tests/reliability/test_dbos_scale.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
