# Two entry points: `make run` (the app on the seed corpus) and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 7860

.PHONY: run test test-quick install index eval browser-deps train-reader train-reader-full clean \
	train-reader-bg train-reader-status train-reader-export train-reader-cooldown train-reader-ship train-reader-device-pack train-reader-device-dryrun \
	train-reader-device-join

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

# Round 3 (issue 20): ONE long schedule (3 epochs of the full mix from the shipped reader, lr 3e-5,
# warm-up 2%, seed 13) that spans sessions. First thing in a session: `make train-reader-bg` (starts it, or
# resumes it from its checkpoint; niced; runs a snapshot of HEAD; pid in $(READER_RUNS)/train.pid; refuses
# when it is already going). Before stopping: `make train-reader-export` (exports the latest checkpoint
# without stopping the run, measures it on all 732 validation questions, adds it to docs/reader-curve.*).
# Ship rule: replace qa/models/reader only when that F1 beats the shipped reader's by >= 1 point.
READER_RUNS = $(if $(filter command line environment,$(origin RUNS)),$(RUNS),$(HOME)/.cache/qa/reader-runs)
THREADS ?= 2
train-reader-bg:
	$(BIN)/python -m qa.training.reader_runs start --runs $(READER_RUNS) --threads $(THREADS)

train-reader-status:
	$(BIN)/python -m qa.training.reader_runs status --runs $(READER_RUNS)

train-reader-export:
	$(BIN)/python -m qa.training.reader_runs export --runs $(READER_RUNS)

# An export's cooldown branch (6 minutes at a learning rate decaying to zero; the run goes on untouched),
# measured on all 732 validation questions and put on the curve: `make train-reader-cooldown [STEP=N]`.
train-reader-cooldown:
	$(BIN)/python -m qa.training.reader_runs cooldown --runs $(READER_RUNS) --threads $(THREADS) $(if $(STEP),--step $(STEP))

# When the export (or, with COOLED=1, its cooldown) says SHIP: copy it into qa/models/reader (ship rule
# re-checked on the curve) and recalibrate.
train-reader-ship:
	$(BIN)/python -m qa.training.reader_runs ship --runs $(READER_RUNS) $(if $(STEP),--step $(STEP)) $(if $(COOLED),--cooled)

# One call on a lent GPU (bench/device_train.sh): pack the data here (git-ignored .device/, carried), run the
# script there, join the weights that come back here. Dry run on this CPU with the device image's missing
# packages blocked: `make train-reader-device-dryrun`.
train-reader-device-pack:
	$(BIN)/python -m qa.training.device_pack pack --to .device

.device/data.sha256.json:
	$(BIN)/python -m qa.training.device_pack pack --to .device

DRYRUN_OUT ?= /tmp/qa-device-dryrun
train-reader-device-dryrun: .device/data.sha256.json
	rm -rf $(DRYRUN_OUT) && LIMIT=$${LIMIT:-64} EPOCHS=$${EPOCHS:-1} BATCH=$${BATCH:-8} BUDGET=$${BUDGET:-300} \
	  EVALQ=$${EVALQ:-64} \
	  OUT=$(DRYRUN_OUT)/out WORK=$(DRYRUN_OUT)/work PY=$(abspath $(BIN)/python) \
	  PYTHONPATH=$(CURDIR)/bench/device_image bash bench/device_train.sh
	$(MAKE) train-reader-device-join PARTS=$(DRYRUN_OUT)/out JOINED=$(DRYRUN_OUT)/joined

JOINED ?= $(READER_RUNS)/device/export
train-reader-device-join:
	@test -n "$(PARTS)" || { echo "give PARTS=FOLDER (the files a device call sent back)"; exit 2; }
	$(BIN)/python -m qa.training.device_pack join $(PARTS) --to $(JOINED)

clean:
	rm -rf $(VENV) index/snap-* index/CURRENT
