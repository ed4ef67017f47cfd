# Two commands do everything on a fresh machine (Python 3.11, 3.12 or 3.13 with venv):
#   make demo   install topcal into .venv and run the main job on the embedded sample
#   make test   install topcal with the test extras (pytest, ROOT, ruff) into .venv and run the test suite
# Choose the interpreter with PYTHON=python3.13; a .venv made by another Python is rebuilt.
# make clean removes the outputs (out/, caches, build files) and keeps .venv; make distclean removes .venv too.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUPPORTED := 3.11 3.12 3.13
SAMPLE := topcal/data/ttbar_noisr_2000ev.root
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

.PHONY: install install-test demo test lint bench clean distclean

ifneq ($(filter install install-test demo test lint bench,$(or $(MAKECMDGOALS),install)),)
ifeq ($(filter $(PYVER),$(SUPPORTED)),)
$(error topcal needs Python 3.11, 3.12 or 3.13; PYTHON=$(PYTHON) is $(if $(PYVER),Python $(PYVER),not found))
endif
endif

# The main job's packages only; the stamp names the Python, so another interpreter rebuilds the venv.
$(VENV)/.installed-$(PYVER): pyproject.toml
	@if [ -x $(BIN)/python ] && [ "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$(PYVER)" ]; then \
		echo "$(VENV) was made by another Python: rebuilding it with Python $(PYVER)"; rm -rf $(VENV); fi
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test-$(PYVER): $(VENV)/.installed-$(PYVER)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed-$(PYVER)

install-test: $(VENV)/.installed-test-$(PYVER)

demo: install
	$(BIN)/topcal info $(SAMPLE)
	$(BIN)/topcal demo -o out/demo

test: install-test
	$(BIN)/python -m pytest

lint: install-test
	$(BIN)/ruff check .

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_physics.py --seed 4242 --events 90000 --json out/bench_physics.json
	$(BIN)/python benchmarks/bench_generate.py --events 3000 --slim --json out/bench_generate.json
	$(BIN)/python benchmarks/bench_process.py --copies 10 --memory-events 100000 --json out/bench_process.json
	$(BIN)/python benchmarks/bench_train.py --jets 20000 --epochs 5 --json out/bench_train.json
	$(BIN)/python benchmarks/bench_predict.py --copies 5 --samples 50 --json out/bench_predict.json

clean:
	rm -rf out build .pytest_cache .ruff_cache *.egg-info

distclean: clean
	rm -rf $(VENV) .venv-newest
