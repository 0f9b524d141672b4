#!/usr/bin/env bash
# One call on a lent GPU: train the reader from the shipped weights on the full mix, validate, send the weights back.
#
#   make train-reader-device-pack          # here, once: .device/data.tar.xz (+ sha256), git-ignored
#   device run, carry [".device"], command:  OUT=$OUT bash bench/device_train.sh
#   make train-reader-device-join PARTS=/work/.device/...   # here: verify parts, rename into place
#
# ~3 epochs (EPOCHS) of the full mix at batch BATCH under bf16 autocast on CUDA, lr LR with 2% warm-up, seed 13.
# --time-budget BUDGET (seconds from start, data preparation included) stops training in time: the linear decay
# is fitted to the steps the measured speed allows, then it validates on all 732 validation questions and exports
# (fp16), so the call always ends with weights. Back in $OUT (<= 8 files): reader.part00.. (<= 15 MiB each),
# reader.meta.json (sizes + sha256), train.log, val.jsonl.
# Dry run on a CPU (make train-reader-device-dryrun): LIMIT=64 EPOCHS=1 BATCH=8 BUDGET=300 EVALQ=64, with the
# packages the device image lacks blocked by bench/device_image/sitecustomize.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
OUT=${OUT:?set OUT to the folder the files go back from}
EPOCHS=${EPOCHS:-3}
BATCH=${BATCH:-128}
LR=${LR:-6e-5}
BUDGET=${BUDGET:-390}
LIMIT=${LIMIT:-}
EVALQ=${EVALQ:-0}  # validation questions at the end (0: all 732; a CPU dry run may take fewer)
WORK=${WORK:-$(mktemp -d)}
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
start=$(date +%s)
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'
$PY -m qa.training.device_pack unpack .device --to "$WORK/data"
# the budget counts from here; unpacking took:
BUDGET=$(( BUDGET - ($(date +%s) - start) ))
$PY -m qa.training.train_reader --mix full --data "$WORK/data" --init qa/models/reader --out "$WORK/run" \
  --export "$WORK/export" --epochs "$EPOCHS" --batch-size "$BATCH" --lr "$LR" --warmup 0.02 --negatives 0.1 \
  --seed 13 --save-every 0 --eval-every 0 --eval-questions "$EVALQ" --time-budget "$BUDGET" ${LIMIT:+--limit "$LIMIT"}
$PY -m qa.training.device_pack split "$WORK/export" --to "$OUT" --extra "$WORK/run/train.log" --extra "$WORK/run/val.jsonl"
ls -l "$OUT"
echo "device_train: $(( $(date +%s) - start )) s in all"
