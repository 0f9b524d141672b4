# Two entry points: `make run` (the app on the seed corpus) and `make test`.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
HOST    ?= 127.0.0.1
PORT    ?= 7860

.PHONY: run test install index eval browser-deps clean

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

clean:
	rm -rf $(VENV) index/snap-* index/CURRENT
