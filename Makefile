# settlewatch — every target installs what is missing first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The stream processor bench/peer.py compares with, in an environment of its own (its pins
# conflict with ours: docs/benchmarks.md, "Matcher vs Quix Streams").
PEER := .venv-peer
PEER_STAMP := $(PEER)/.installed

.PHONY: install run demo test test-deep lint bench clean

install: $(STAMP)

# Reinstalled only when the dependency list changes; sources are on the path (editable install).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

$(PEER_STAMP): bench/peer-requirements.txt
	@test -x $(PEER)/bin/python || $(PYTHON) -m venv $(PEER)
	$(PEER)/bin/python -m pip install --quiet --disable-pip-version-check -r $<
	@touch $(PEER_STAMP)

run: install
	$(BIN)/settlewatch up

# Against the running stack (`make run` in another terminal), or one it starts and leaves up
# for its links until Ctrl-C.
demo: install
	$(BIN)/settlewatch demo --keep

# pytest-xdist workers, one more than the cores: the e2e tests (10–70 s each) mostly wait on
# processes and rebalances, so a spare worker keeps the cores busy. Each worker has its own
# PostgreSQL and broker, every test its own database and topic prefix; an idle worker takes tests
# queued for another (worksteal). test-deep gives the property tests their full example budget.
WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))
test: install
	$(BIN)/pytest -n $(WORKERS) --dist worksteal

test-deep: install
	HYPOTHESIS_PROFILE=deep $(BIN)/pytest -n $(WORKERS) --dist worksteal

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy libs services

# Each script prints its figures and a last line `RESULT <name>=<ratio>`; see docs/benchmarks.md.
bench: install $(PEER_STAMP)
	$(BIN)/python -m bench.ingest
	$(BIN)/python -m bench.matcher
	$(BIN)/python -m bench.peer
	$(BIN)/python -m bench.fees
	$(BIN)/python -m bench.overdue_latency
	$(BIN)/python -m bench.overdue_latency --timer-interval PT0.5S
	$(BIN)/python -m bench.matcher_state
	$(BIN)/python -m bench.steady
	$(BIN)/python -m bench.scaling
	$(BIN)/python -m bench.search
	$(BIN)/python -m bench.migration
	$(BIN)/python -m bench.alerts
	$(BIN)/python -m bench.restart
	$(BIN)/python -m bench.files
	$(BIN)/python -m bench.console
	$(BIN)/python -m bench.soak --minutes 5

clean:
	rm -rf $(VENV) $(PEER) .data .pytest_cache .mypy_cache .ruff_cache
