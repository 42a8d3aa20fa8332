#!/usr/bin/env bash
# Complex-valued prior in one GPU call (sized for one 10-minute device call on one large GPU):
#   1. continue training the bundled complex default (score-brain-complex: 10000 CPU steps; INIT picks another
#      start, e.g. mrdiff_cli/weights/score-brain-128 to fine-tune the magnitude prior as before) on the geometry
#      it was trained on (GEOM, default "--matrix 64 --voxel 4 --voxels 2": 64² patches at 2 mm, the same network
#      geometry, so every tensor of the start carries over; "--matrix 128" trains whole slices): real and
#      imaginary channels, random-phase augmentation, input demodulated by its 24-of-128-pixel low-resolution
#      phase (`mrdiff train score --complex --complex-demod 0.1875`), for TRAIN_S seconds (default 300; it
#      checkpoints and writes RUN/bundle every 250 steps, so a cut run still has one);
#   2. run it on the TUNE suite for EVAL_S seconds (default 180; the magnitude prior's and CS's entries are taken
#      from MAGFROM, default benchmarks/results/complex_prior_tune_cpu10000.jsonl, whose "complex" entries are the
#      current default's: compare the candidate with those offline;
#      benchmarks/complex_prior.py writes one JSON line per row, so a cut run keeps its rows): the random-phase
#      conditions first (1, 3, 4, 6), then the polynomial ones (0, 2, 5);
#   3. copy back the log, the rows, the table and the weights (fp16, in parts under 15 MiB; reassemble with
#      cat model.fp16.safetensors.part-* > model.safetensors).
# Prepare first with benchmarks/gpu_prepare.sh (corpus + wheels), then
#     run(command="bash benchmarks/gpu_complex.sh", carry=["data/corpus", ".whl"], timeout_s=600)
# Environment: OUT (the device tool's $OUT, else ./gpu_out), TRAIN_S, EVAL_S, STEPS (4000), BATCH (128), LR (2e-4),
# CONDITIONS, DEVICE (cuda), RUN (runs/complex_gpu), INIT (mrdiff_cli/weights/score-brain-complex), GEOM, DEMOD (0.1875; 0 = the raw complex image). Tested on the CPU with tiny settings (tests/test_bench_gpu_complex.py).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
gpu_setup
export MRDIFF_CORPUS=${MRDIFF_CORPUS:-$PWD/data/corpus}
RUN=${RUN:-runs/complex_gpu}
DEVICE=${DEVICE:-cuda}
# 1. fine-tune (2 mm whole slices, the default's data and augmentation plus random phase)
timeout "${TRAIN_S:-300}" python3 -m mrdiff_cli.cli.main train score "$MRDIFF_CORPUS/train" --val "$MRDIFF_CORPUS/tune" \
  --out "$RUN" --complex --complex-demod "${DEMOD:-0.1875}" --init-from "${INIT:-mrdiff_cli/weights/score-brain-complex}" --base-channels 32 \
  --steps "${STEPS:-4000}" --batch-size "${BATCH:-128}" --lr "${LR:-2e-4}" --warmup 100 --checkpoint-every 250 \
  --val-every 1000 --device "$DEVICE" --resume --no-sample-grid ${GEOM:---matrix 64 --voxel 4 --voxels 2} ${EXTRA:-} --json > "$OUT/train.jsonl" 2> "$OUT/train.err"
echo "training exit $? (124 = cut at TRAIN_S)" >> "$OUT/machine.txt"
if [ ! -f "$RUN/bundle/model.safetensors" ]; then
  echo "no bundle was written" >> "$OUT/machine.txt"
  exit 1
fi
cp "$RUN/bundle/config.json" "$OUT/candidate_config.json"
# 2. the candidate on the tune suite with the default count pilot (the recorded magnitude/CS entries reused)
timeout "${EVAL_S:-180}" python3 benchmarks/complex_prior.py --split tune --model "$RUN/bundle" --device "$DEVICE" \
  --conditions "${CONDITIONS:-1,3,4,6,0,2,5}" --count-pilot auto \
  --magnitude-from "${MAGFROM:-benchmarks/results/complex_prior_tune_cpu10000.jsonl}" --out "$OUT/complex_prior_tune.jsonl" > "$OUT/eval.log" 2>&1
echo "evaluation exit $? (124 = cut at EVAL_S)" >> "$OUT/machine.txt"
if [ -s "$OUT/complex_prior_tune.jsonl" ]; then
  python3 benchmarks/complex_prior.py --table "$OUT/complex_prior_tune.jsonl" > "$OUT/complex_prior_tune.md" 2>&1
fi
# 3. the candidate's weights as fp16, in parts the device tool can return
gpu_return_fp16 "$RUN/bundle"
ls -la "$OUT"
