# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch is pinned here, not in pyproject.toml: 2.13.0 resolves to a local CPU build, while an unpinned
# torch pulls several GB of CUDA packages.
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint bench reproduce clean explore browser gpu-check

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

test: install lint browser
	$(BIN)/python -m pytest -q

# The browser tests drive Debian's chromium through chromium-driver. Installed here when missing and we are root
# with apt-get; otherwise say why those tests will skip. Never fails the build.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium and chromium-driver (apt-get) for the browser tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
			|| echo "could not install chromium/chromium-driver: the browser tests will be skipped"; \
	else \
		echo "chromium or chromedriver missing (not root, or no apt-get): the browser tests will be skipped;" \
			"install Debian's chromium and chromium-driver to run them"; \
	fi

explore: install
	@echo "steer explore: the URL is printed below; Ctrl-C stops it"
	$(BIN)/steer explore

lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

reproduce: install
	$(BIN)/steer batch configs/reproduce.yaml --out outputs/reproduce --junit outputs/reproduce/claims.xml
	@echo "Read outputs/reproduce/summary.md"

bench: install
	$(BIN)/python benchmarks/bench.py

# On a machine with a GPU and a CUDA build of torch in .venv: the same studies on cuda and cpu, compared.
gpu-check: install
	$(BIN)/python benchmarks/gpu_check.py

clean:
	rm -rf outputs/*/ .pytest_cache
