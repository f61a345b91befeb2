# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOME_DIR ?= ./.swarmvar
export JAX_PLATFORMS := cpu
export RAY_AUTH_MODE := disabled

.PHONY: demo test test-slow bench bench-quick lint typecheck clean venv system-deps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/swarmvar var --data sp500 --alpha 0.99,0.975 --home $(HOME_DIR)
	$(BIN)/swarmvar backtest --data sp500 --last 2500 --alpha 0.99,0.975 --home $(HOME_DIR) \
		--report $(HOME_DIR)/backtest.html --plot $(HOME_DIR)/backtest.png
	$(BIN)/swarmvar var --positions AAPL=600000,MSFT=-400000,XOM=300000 --trade JPM=1000000 \
		--home $(HOME_DIR)
	$(BIN)/swarmvar run --data sp500 --beats 250 --arbiter --home $(HOME_DIR) --quiet
	$(BIN)/swarmvar ledger verify --home $(HOME_DIR)

# bubblewrap, PostgreSQL, Chromium, iproute2, iptables: apt-get when missing and root.
system-deps:
	bash scripts/system-deps.sh

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

test-slow: $(STAMP) system-deps
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP) system-deps
	$(BIN)/python benchmarks/run.py

bench-quick: $(STAMP)
	$(BIN)/python benchmarks/run.py --quick

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src/swarmvar

clean:
	rm -rf $(VENV) $(HOME_DIR) build *.egg-info src/*.egg-info
