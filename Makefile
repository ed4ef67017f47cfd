# Two commands do everything on a fresh machine (Python 3.11 with venv):
#   make demo   install into .venv and run the main job on the embedded sample in data/
#   make test   install into .venv (with the test and ROOT extras) and run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SAMPLE := topcal/data/ttbar_noisr_2000ev.root

.PHONY: install demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,root]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/topcal info $(SAMPLE)
	$(BIN)/topcal demo --sample $(SAMPLE) -o out/demo

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]"
	$(BIN)/python benchmarks/bench_physics.py --seed 4242 --events 90000 --json out/bench_physics.json
	$(BIN)/python benchmarks/bench_generate.py --events 3000 --slim --json out/bench_generate.json
	$(BIN)/python benchmarks/bench_process.py --copies 10 --memory-events 100000 --json out/bench_process.json
	$(BIN)/python benchmarks/bench_train.py --jets 20000 --epochs 5 --json out/bench_train.json
	$(BIN)/python benchmarks/bench_predict.py --copies 5 --samples 50 --json out/bench_predict.json

clean:
	rm -rf out .pytest_cache
