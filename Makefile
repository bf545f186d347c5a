# gmixpy: two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
SAMPLE := data/alice29.txt
DEMO_DIR := $(VENV)/demo

.PHONY: all venv demo test lint bench fuzz clean clean-cache

all: test

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
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
	$(PY) -m pytest -q

lint: venv
	$(VENV)/bin/ruff check .

bench: venv
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# Thousands of mutated archives, model files and checkpoints (about five minutes); counts per outcome are printed
# and written to bench-results/fuzz-*.json.  GMIXPY_FUZZ_CASES sets the number of random cases per family.
FUZZ_CASES ?= 5000
fuzz: venv
	GMIXPY_FUZZ_CASES=$(FUZZ_CASES) GMIXPY_RESULTS=bench-results $(PY) -m pytest -q -s tests/test_fuzz.py tests/test_model_values.py

clean-cache:
	rm -rf $(HOME)/.cache/gmixpy/numba

clean: clean-cache
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
