# nclib — the two commands of the README's quick start:
#   make book   build the book (executes the notebooks on PROFILE, default mini)
#   make test   run the test suite (and ruff)
# Both create .venv/ and install what they need on first use.

PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
PROFILE  ?= mini
# teacher: the assignment pages executed, solutions collapsed; student: the handout notebooks, no solution anywhere
EDITION  ?= teacher
DEVICE   ?=
# GPUS=k: the pre-training and transfer grids on k GPUs, one Dask worker per GPU (nclib.grid.gpu_cluster)
GPUS     ?=
# Caches (embeddings, trained models, runs) live at the repository root whatever the notebooks' working folder.
NCLIB_CACHE ?= $(CURDIR)/.cache/nclib
# The paper's dry run reads fixture data that `python -m nclib.data fixtures` writes (the same bytes every time),
# and keeps its results apart from the mini profile's.
ifeq ($(PROFILE),paper-dryrun)
DRYRUN := $(CURDIR)/.cache/paper-dryrun
export NCLIB_DATA_ROOT := $(DRYRUN)/data
NCLIB_CACHE := $(DRYRUN)/nclib
endif
# Debian packages the mini profile reads its offline data from (`make system`; the notebooks' install cell runs it),
# and those the tests add: Chromium and its driver, for the browser test of the built site.
APT_PACKAGES := dataset-fashion-mnist espeak-ng sox fluidsynth fluid-soundfont-gm sonic-pi-samples
TEST_PACKAGES := chromium chromium-driver
# MathJax, served from the site itself (no CDN): the npm package, its browser build copied into book/_static/.
MATHJAX  := 3.2.2
MATHJAX_DIR := book/_static/mathjax

.PHONY: book test lint bench system venv clean mathjax

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[book,dev]"
	@touch $@

# System packages: installed with apt-get when run as root, otherwise we say what is missing.
system:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
	  echo "missing Debian packages:$$missing"; \
	  echo "install them with: sudo apt-get install$$missing"; exit 1; \
	fi

test: venv mathjax
	@$(MAKE) --no-print-directory system APT_PACKAGES="$(APT_PACKAGES) $(TEST_PACKAGES)"
	$(BIN)/ruff check .
	$(BIN)/mypy nclib
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .

bench: venv system
	$(BIN)/python benchmarks/bench_scores.py
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_throughput.py

# make book [PROFILE=mini|paper|paper-native|paper-dryrun|tiny] [DEVICE=cpu|cuda] [GPUS=k] [EDITION=teacher|student]:
# check that every dataset of the profile is here (a report of all that are missing stops the build before any
# work), execute every notebook on params/$(PROFILE).yaml into book/generated/, then build the site from those
# copies into _build/html (warnings are errors). DEVICE, when given, replaces the profile's device.
book: venv system mathjax
	$(if $(DRYRUN),$(BIN)/python -m nclib.data fixtures $(NCLIB_DATA_ROOT))
	$(BIN)/python -m nclib.data check params/$(PROFILE).yaml
	$(BIN)/python -m ipykernel install --sys-prefix --name nclib --display-name nclib >/dev/null
	NCLIB_DEVICE=$(DEVICE) NCLIB_GPUS=$(GPUS) NCLIB_CACHE=$(NCLIB_CACHE) $(BIN)/python -m nclib.book params/$(PROFILE).yaml notebooks/*.md
	NCLIB_CACHE=$(NCLIB_CACHE) $(BIN)/python -m nclib.assignments book --edition $(EDITION)
	$(BIN)/jupyter-book build . -W -n --keep-going

mathjax: $(MATHJAX_DIR)/.$(MATHJAX)

# Only what the site loads: the TeX+MathML input / CommonHTML output component, its fonts, lazily loaded TeX
# extensions and the menu (the speech-rule engine and the SVG output are left out: 3.1 of the package's 24 MB).
$(MATHJAX_DIR)/.$(MATHJAX):
	@command -v npm >/dev/null || { echo "npm is needed to fetch MathJax (Debian: apt-get install npm)"; exit 1; }
	rm -rf $(MATHJAX_DIR) .cache/mathjax && mkdir -p .cache/mathjax $(MATHJAX_DIR)/output/chtml $(MATHJAX_DIR)/input/tex
	cd .cache/mathjax && npm pack --silent mathjax@$(MATHJAX) >/dev/null && tar xzf mathjax-$(MATHJAX).tgz
	cp .cache/mathjax/package/es5/tex-mml-chtml.js $(MATHJAX_DIR)/
	cp -r .cache/mathjax/package/es5/output/chtml/fonts $(MATHJAX_DIR)/output/chtml/
	cp -r .cache/mathjax/package/es5/input/tex/extensions $(MATHJAX_DIR)/input/tex/
	cp -r .cache/mathjax/package/es5/ui .cache/mathjax/package/es5/a11y $(MATHJAX_DIR)/
	cp .cache/mathjax/package/LICENSE $(MATHJAX_DIR)/
	@touch $@

clean:
	rm -rf _build
