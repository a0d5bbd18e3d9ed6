# One command per task. Each creates the virtual environment from uv.lock first.
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
SIZE ?= 1000000
# Test processes (pytest-xdist): auto is one per CPU. Tests that share a module-scoped
# fixture can stay on one worker with @pytest.mark.xdist_group (--dist loadgroup).
TEST_WORKERS ?= auto
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadgroup

.PHONY: install run test test-fast lint format bench fuzz clean

install: .venv/.synced

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: pyproject.toml uv.lock | $(UV)
	# Bytecode compiled once here, so that processes start fast even where
	# PYTHONDONTWRITEBYTECODE is set (importing scikit-learn from source takes seconds).
	$(UV) sync --frozen --compile-bytecode
	touch $@

run: install  ## start the platform on SQLite with demo data
	scripts/run.sh

test: install  ## the test suite, every tier (SQLite, plus PostgreSQL when one answers)
	scripts/test.sh $(PYTEST_PARALLEL)

test-fast: install  ## the edit loop: the suite without the slow tiers (deploy, browser, bench, fuzz)
	scripts/test.sh $(PYTEST_PARALLEL) -m "not (deploy or browser or bench or fuzz)"

lint: install  ## ruff and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: install  ## benchmarks: bulk import throughput, duplicate detection quality and speed (SIZE=50000 for a quick run)
	bench/run.sh $(SIZE)

fuzz: install  ## schemathesis through the gateway, all phases, on PostgreSQL (FUZZ_EXAMPLES=20 for a quick run)
	scripts/fuzz.sh

format: install
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:
	rm -rf .venv $(TOOLS) data .pytest_cache .mypy_cache .ruff_cache
