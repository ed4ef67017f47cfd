# Two commands do everything on a fresh machine (Python 3.11 with venv):
#   make demo   install into .venv and run the main job on the embedded sample in data/
#   make test   install into .venv (with the test extras) and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE := data/ttbar_noisr_2000ev.root

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/topcal info $(SAMPLE)
	mkdir -p out
	$(BIN)/topcal generate -o out/demo_ttbar.root --events 500 --workers 2 --seed 1 --overwrite
	$(BIN)/topcal info out/demo_ttbar.root

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python benchmarks/bench_generate.py --events 2000

clean:
	rm -rf out .pytest_cache
