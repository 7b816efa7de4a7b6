# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch is pinned here, not in pyproject.toml: 2.13.0 resolves to a local CPU build, while an unpinned
# torch pulls several GB of CUDA packages.
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint bench reproduce clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/steer apply configs/demo.yaml --out outputs/demo
	@echo "Open outputs/demo/field-seed0.png (vector fields) and outputs/demo/metrics.json (numbers)."

LINTED := steer cli tests benchmarks

test: install lint
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

reproduce: install
	$(BIN)/steer batch configs/reproduce.yaml --out outputs/reproduce --junit outputs/reproduce/claims.xml
	@echo "Read outputs/reproduce/summary.md"

bench: install
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf outputs/*/ .pytest_cache
