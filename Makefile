# Two entry points: `make run` (the app on the seed corpus) and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 7860

.PHONY: run test test-quick install index eval browser-deps train-reader train-reader-full clean

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

# The fast tests only: no real models, no browser, no Milvus Lite, no kill -9 trials.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not browser and not milvus and not kill"

index: $(STAMP)
	$(BIN)/python -m qa index seeds

eval: $(STAMP)
	$(BIN)/python -m qa.evaluate tests/gold/seeds.jsonl

# Reproduces qa/models/reader from the packaged base encoder and ../shared/data
# (about 85 + 25 minutes on 2 AMX cores; checkpoints and logs go to $(RUNS)).
# Every stage resumes from its checkpoint when re-run.
RUNS ?= /tmp/qa-reader-runs
train-reader: $(STAMP)
	$(BIN)/python -m qa.training.train_reader --out $(RUNS)/stage1 --export $(RUNS)/stage1/export --epochs 3 --lr 1e-4
	$(BIN)/python -m qa.training.train_reader --out $(RUNS)/stage2 --export qa/models/reader --init $(RUNS)/stage1/export \
	  --epochs 1 --lr 3e-5 --unanswerable-repeat 2 --negatives 0.25 --answerable-fraction 0.6
	$(BIN)/python -m qa.training.calibrate_reader --model qa/models/reader

# Round 2 (issue 8): continue from the shipped reader on the full v1.1 train set +
# QED train + unanswerables + made negatives (~113k questions). Resumable: re-run
# the same command after an interruption; progress, ETA and validation F1 go to
# $(RUNS)/full/train.log and val.jsonl. EPOCHS=1 is ~115k windows (~3.5 h at 9 windows/s).
EPOCHS ?= 1
train-reader-full: $(STAMP)
	$(BIN)/python -m qa.training.train_reader --mix full --init qa/models/reader --out $(RUNS)/full \
	  --export $(RUNS)/full/export --epochs $(EPOCHS) --lr 5e-5 --negatives 0.1 --save-every 25 --eval-every 100
	$(BIN)/python -m qa.training.calibrate_reader --model $(RUNS)/full/export --predictions $(RUNS)/full/calib-preds.json

clean:
	rm -rf $(VENV) index/snap-* index/CURRENT
