# Two entry points: `make run` (the app on the seed corpus) and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 7860

.PHONY: run test install index eval browser-deps train-reader clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Builds (or refreshes) index/ from seeds/ when missing or stale, then serves.
run: $(STAMP)
	$(BIN)/python -m qa index seeds
	$(BIN)/python app.py --host $(HOST) --port $(PORT)

browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "chromium could not be installed: the browser test will be skipped"; }

test: $(STAMP) browser-deps
	$(BIN)/python -m pytest -q

index: $(STAMP)
	$(BIN)/python -m qa index seeds

eval: $(STAMP)
	$(BIN)/python -m qa.evaluate tests/gold/seeds.jsonl

# Reproduces models/reader from the packaged base encoder and ../shared/data
# (about 85 + 25 minutes on 2 CPU cores; checkpoints and logs go to $(RUNS)).
RUNS ?= /tmp/qa-reader-runs
train-reader: $(STAMP)
	$(BIN)/python -m qa.train_reader --out $(RUNS)/stage1 --export $(RUNS)/stage1/export --epochs 3 --lr 1e-4
	$(BIN)/python -m qa.train_reader --out $(RUNS)/stage2 --export models/reader --init $(RUNS)/stage1/export \
	  --epochs 1 --lr 3e-5 --unanswerable-repeat 2 --negatives 0.25 --answerable-fraction 0.6
	$(BIN)/python -m qa.calibrate_reader --model models/reader

clean:
	rm -rf $(VENV) index/snap-* index/CURRENT
