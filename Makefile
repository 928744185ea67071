# The two commands of the README:  make demo  (the main job)  and  make test  (the whole suite).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup demo test test-fast lint format docs dist clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh $(VENV)
	touch $@

demo: setup  ## train a CNN on digits, evaluate it, write runs/demo/report.html
	$(BIN)/glassnet demo

# test processes (pytest-xdist): one per CPU this process may use (affinity, cgroup quota), each with one torch thread (tests/conftest.py)
JOBS ?= $(shell $(BIN)/python -c "from glassnet.threads import available_cpus; print(available_cpus().count)" 2>/dev/null || echo 1)

test: setup  ## fast and slow tests, as CI runs them, in one process per CPU (JOBS=1: one process)
	$(BIN)/python -m pytest -n $(JOBS) --dist loadfile

test-fast: setup  ## everything but the slow tests that train on real data
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

docs: setup  ## the documentation site (API reference from the docstrings) in site/; warnings are errors
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
	@echo "docs: open site/index.html"

dist: setup  ## the wheel and the sdist in dist/
	$(BIN)/python -m build --no-isolation --outdir dist .

clean:
	rm -rf $(VENV) runs site build dist .pytest_cache .ruff_cache
