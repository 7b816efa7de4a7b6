# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# torch is pinned here, not in pyproject.toml: 2.13.0 resolves to a local CPU build, while an unpinned
# torch pulls several GB of CUDA packages.
TORCH  ?= torch==2.13.0

.PHONY: install demo test lint bench reproduce clean explore browser gpu-check golden docs results tune gallery features features-retarget feature-search tables-doc

# pip's own output goes to $(VENV)/install.log (shown when it fails): a newcomer sees one line per step.
$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing steer, $(TORCH) and the dev tools into $(VENV) (pip's log: $(VENV)/install.log)"
	@( $(BIN)/python -m pip install --upgrade pip && $(BIN)/python -m pip install "$(TORCH)" \
		&& $(BIN)/python -m pip install -e ".[dev]" ) > $(VENV)/install.log 2>&1 \
		|| { tail -n 30 $(VENV)/install.log; echo "make install failed: the whole log is $(VENV)/install.log"; exit 1; }
	@$(BIN)/python -c "import numpy, steer, steer.maze.env, torch; from steer.run.session import procgen_version as p; \
		print(f'installed steer {steer.__version__} with torch {torch.__version__}, numpy {numpy.__version__}, {p()} into $(VENV)')"
	@touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/steer apply configs/demo.yaml --out outputs/demo
	@echo "Open outputs/demo/field-seed1.png (the vector fields), outputs/demo/report.html (the run's page) and"
	@echo "outputs/demo/metrics.json (the numbers)."

# Golden values for the cross-machine check (tests/test_golden.py): only for a change meant to move numbers.
golden: install
	$(BIN)/python tests/golden.py --write

LINTED := steer cli tests benchmarks

test: install lint browser docs
	$(BIN)/python -m pytest -q

# The docs site (MkDocs Material); --strict fails on a broken link or a page missing from the nav.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet -d outputs/site
	@echo "docs built: outputs/site/index.html"

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

# Every claim on a discovery and a replication sample (exits 1 when a verdict changes; refused when a criterion
# changed since configs/reproduce.lock sealed it); then the README's and docs/results.md's claims tables, their
# chart (docs/claims/reproduce.png, .svg) and docs/claims/reproduce.json from this run, so no number in them is
# copied by hand.
reproduce: install
	$(BIN)/steer batch configs/reproduce.yaml --out outputs/reproduce --junit outputs/reproduce/claims.xml
	$(BIN)/python -m steer.report.headline outputs/reproduce/claims.json
	@echo "Read outputs/reproduce/summary.md (or summary.html); README.md's table now shows this run."

# Only the claims tables, their chart and docs/claims/reproduce.json, from the last make reproduce.
results: install
	$(BIN)/python -m steer.report.headline outputs/reproduce/claims.json

# docs/outputs.md's table of every table's columns, from the studies' declarations (tests/test_tables.py holds it).
tables-doc: install
	$(BIN)/python -c "from steer.studies import write_tables_doc; write_tables_doc('docs/outputs.md')"

# Every figure steer draws, in every format, from small real runs (configs/gallery.yaml; about a minute):
# docs/img/gallery.png, the contact sheet docs/figures.md shows, and that page's list of formats.
gallery: install
	$(BIN)/steer activations configs/gallery-activations.yaml --out outputs/gallery-activations
	$(BIN)/steer features configs/gallery-features.yaml --out outputs/gallery/features
	$(BIN)/steer batch configs/gallery.yaml --out outputs/gallery
	$(BIN)/python -m steer.report.gallery outputs/gallery docs/img/gallery.png docs/figures.md

# The sparse dictionary and its sealed claims (configs/features.yaml; about 10 minutes on 2 cores): the default
# dictionary first, which the batch's specs name, then the batch.
features: install
	$(BIN)/steer features configs/features-fit.yaml --out outputs/features-fit
	$(BIN)/steer batch configs/features.yaml --out outputs/features

# Clamping the cheese feature at each target against channel 10's retargeting (configs/features-retarget.yaml;
# about 15 minutes on 2 cores, after `make features`, whose dictionary it reads).
features-retarget: install
	$(BIN)/steer batch configs/features-retarget.yaml --out outputs/features-retarget

# Which dictionary features steer the policy, added everywhere (configs/discover-features.yaml) and at the cheese
# (configs/discover-features-cheese.yaml); about 20 minutes each on 2 cores, after `make features`, whose dictionary
# they search.
feature-search: install
	$(BIN)/steer batch configs/discover-features.yaml --out outputs/discover-features
	$(BIN)/steer batch configs/discover-features-cheese.yaml --out outputs/discover-features-cheese

# Compile the network's units for this CPU (once per machine), check them bit for bit against eager, keep the
# faster exact path; make bench runs it first.
tune: install
	$(BIN)/steer tune

bench: install
	$(BIN)/python benchmarks/bench.py

# On a machine with a GPU: the same studies on cuda and cpu, compared. GPU_PYTHON is a Python whose torch is a
# CUDA build, with steer installed beside it (docs/speed.md, "On a GPU"); by default this project's .venv.
GPU_PYTHON ?= $(BIN)/python
gpu-check: $(if $(filter $(BIN)/python,$(GPU_PYTHON)),install)
	$(GPU_PYTHON) benchmarks/gpu_check.py

clean:
	rm -rf outputs/*/ .pytest_cache
