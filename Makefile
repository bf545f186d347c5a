# gmixpy: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SAMPLE := data/alice29.txt
DEMO_DIR := $(VENV)/demo

.PHONY: all venv demo test lint bench fuzz html-check clean clean-cache

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,plot,dask]'
	@touch $(STAMP)

# Compress and decompress the bundled sample with the default preset, check the round trip, print the summary.
demo: venv
	@mkdir -p $(DEMO_DIR)
	$(VENV)/bin/gmixpy compress $(SAMPLE) -o $(DEMO_DIR)/alice29.txt.gmx --force
	$(VENV)/bin/gmixpy info $(DEMO_DIR)/alice29.txt.gmx
	$(VENV)/bin/gmixpy decompress $(DEMO_DIR)/alice29.txt.gmx -o $(DEMO_DIR)/alice29.txt --force
	cmp $(SAMPLE) $(DEMO_DIR)/alice29.txt && echo "demo: round trip of $(SAMPLE) is byte-exact"

# The linter first (configured in pyproject.toml), then the tests: CI runs `make test`.
test: venv lint
	$(PY) -m pytest -q --durations=30

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# Thousands of mutated archives, model files and checkpoints (about five minutes); counts per outcome are printed
# and written to bench-results/fuzz-*.json.  GMIXPY_FUZZ_CASES sets the number of random cases per family.
FUZZ_CASES ?= 5000
fuzz: venv
	GMIXPY_FUZZ_CASES=$(FUZZ_CASES) GMIXPY_RESULTS=bench-results $(PY) -m pytest -q -s tests/test_fuzz.py tests/test_model_values.py

# The surprise map of the sample in a real browser: analyze it (HTML_PRESET, default `default`), open the page in
# headless Chromium (installed with apt-get when missing) and take a screenshot; the files go to $(HTML_DIR).
HTML_PRESET ?= default
HTML_DIR ?= $(VENV)/html-check
CHROMIUM_FLAGS := --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
	--disable-sync --no-first-run --disable-quic
html-check: venv
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		chromium >/dev/null; } || { echo "html-check: needs Chromium (as root: apt-get install chromium)"; exit 1; }
	@mkdir -p $(HTML_DIR)
	$(VENV)/bin/gmixpy analyze $(SAMPLE) --preset $(HTML_PRESET) --html $(HTML_DIR)/alice29.html \
		--plot $(HTML_DIR)/alice29-bars.png --force -q > $(HTML_DIR)/alice29-table.txt
	@rm -rf $(HTML_DIR)/profile
	chromium $(CHROMIUM_FLAGS) --user-data-dir=$(abspath $(HTML_DIR))/profile --window-size=1280,1800 \
		--screenshot=$(abspath $(HTML_DIR))/alice29.png file://$(abspath $(HTML_DIR))/alice29.html 2>/dev/null
	@rm -rf $(HTML_DIR)/profile
	@test -s $(HTML_DIR)/alice29.png && echo "html-check: $(HTML_DIR)/alice29.html ($$(wc -c < $(HTML_DIR)/alice29.html) \
	bytes) rendered by Chromium into $(HTML_DIR)/alice29.png ($$(wc -c < $(HTML_DIR)/alice29.png) bytes)"

clean-cache:
	rm -rf $(HOME)/.cache/gmixpy/numba

clean: clean-cache
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
