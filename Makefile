# Two entry points for a fresh machine with python3 and make:
#   make demo   emulator + validate + plan + apply + verify on the bundled example
#   make check  the gates: ruff lint, ruff format, mypy --strict
#   make test   the gates, then the test suite (what CI runs)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo check test venv bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

LINTED := numsync tests benchmarks scripts

check: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy --strict numsync

test: check
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(if $(SIZES),--sizes $(SIZES))

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

clean:
	rm -rf $(VENV) .demo .pytest_cache .hypothesis build *.egg-info
