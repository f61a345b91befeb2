# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOME_DIR ?= ./.swarmvar
export JAX_PLATFORMS := cpu
export RAY_AUTH_MODE := disabled

.PHONY: demo test test-slow bench lint typecheck clean venv

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
	$(BIN)/swarmvar ledger verify --home $(HOME_DIR)

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy src/swarmvar

clean:
	rm -rf $(VENV) $(HOME_DIR) build *.egg-info src/*.egg-info
