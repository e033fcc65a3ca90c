# Sluice: `make run` starts everything locally, `make test` runs the tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | md5sum | cut -c1-12)

.PHONY: run test install lint check-sql pg-start pg-stop lock bench bench-compare bench-memory bench-soak bench-stack bench-propagation bench-routing bench-dialects bench-workers bench-tracing clean

run: install
	$(BIN)/sluice run

test: install
	SLUICE_PG_FAST=1 scripts/pg.sh start
	scripts/browser.sh
	$(BIN)/sluice check-sql
	$(MAKE) --no-print-directory lint
	@# the slow tests (mostly waiting out an outage) run beside the others
	@mkdir -p .sluice; $(BIN)/pytest -m slow -p no:cacheprovider > .sluice/test-slow.log 2>&1 & slow=$$!; \
	  $(BIN)/pytest -m "not slow"; main=$$?; \
	  wait $$slow; rc=$$?; echo "--- slow tests:"; cat .sluice/test-slow.log; \
	  test $$main -eq 0 -a $$rc -eq 0

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@scripts/bootstrap.sh "$(PYTHON)" "$(VENV)"
	@rm -f $(VENV)/.installed-*
	@touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check-sql: install
	$(BIN)/sluice check-sql

pg-start:
	scripts/pg.sh start

pg-stop:
	scripts/pg.sh stop

# Re-resolve the pinned dependencies after editing pyproject.toml.
# requirements.lock: everything, for development and CI; requirements-runtime.lock:
# the dependencies of pyproject.toml alone, for the image (deploy/Dockerfile), at
# the versions of the first (-c), so that tests and image run the same code.
lock: install
	$(BIN)/pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	  --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	  --generate-hashes -c requirements.lock -o requirements-runtime.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Revocation propagation to 4 data planes and start-up from a snapshot (docs/benchmarks.md).
bench-propagation: install
	$(BIN)/python -m bench.propagation

# The comparison with LiteLLM and Portkey, memory per open stream, and the soak
# (docs/benchmarks.md). Each also runs alone.
bench: bench-compare bench-memory bench-soak

bench-compare: install
	bench/install_peers.sh
	$(BIN)/python -m bench.compare

bench-memory: install
	$(BIN)/python -m bench.memory

bench-soak: install
	$(BIN)/python -m bench.soak

# Routes of several deployments: a second deployment and a failover against one
# (docs/benchmarks.md). Waits up to 20 minutes for a quiet machine first.
bench-routing: install
	$(BIN)/python -m bench.routing

# The bare HTTP stack: clients, server settings, framework (docs/decisions/0001).
bench-stack: install
	$(BIN)/python -m bench.stack

# What translation between dialects and provider kinds costs against
# pass-through, and Sluice's share of a bare forwarding proxy (docs/benchmarks.md).
bench-dialects: install
	$(BIN)/python -m bench.dialects
	$(BIN)/python -m bench.stack --sluice-only

# Req/s with tracing off and on, and the data plane of commit BEFORE (HEAD by default:
# this tree against the last commit), run from a worktree (docs/benchmarks.md).
BEFORE ?= HEAD
bench-tracing: install
	git worktree remove --force /tmp/sluice-bench-before 2>/dev/null || true
	git worktree add --detach /tmp/sluice-bench-before $(BEFORE)
	$(BIN)/python -m bench.tracing --before /tmp/sluice-bench-before; rc=$$?; \
	  git worktree remove --force /tmp/sluice-bench-before; exit $$rc

# One data plane with `--workers 1` against `--workers 2`, interleaved rounds
# (docs/benchmarks.md).
bench-workers: install
	$(BIN)/python -m bench.workers
