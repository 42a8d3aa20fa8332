#!/usr/bin/env bash
# One GPU session in one command, sized for one 10-minute device call on one large GPU:
#   1. train the prior v2 candidate (benchmarks/train_gpu.sh: 64-channel UNet, batch 128, bf16) for TRAIN_S
#      seconds (default 360; it checkpoints and writes OUT/bundle every 250 steps, so a cut run still has one);
#   2. compare it with the bundled prior on the TUNE split (8 coils: Poisson x8, equispaced x3.3, Gaussian 1D x8;
#      the CS lambda fixed), on the same machine;
#   3. copy back the logs, the JSON tables and the candidate's weights as fp16 in parts under 15 MiB (the device
#      tool returns files of at most 16 MiB). Reassemble here: cat model.fp16.safetensors.part-* > model.safetensors
# Prepare first with benchmarks/gpu_prepare.sh (corpus + wheels), then
#     run(command="bash benchmarks/gpu_session.sh", carry=["data/corpus", ".whl"], timeout_s=600)
# Environment: OUT (the device tool's $OUT, else ./gpu_out), TRAIN_S (360), STEPS (3000), CH, BATCH, DEVICE, EXTRA
# (passed to train_gpu.sh), SETTINGS (the tune settings), PER_VOLUME (3). Tested on the CPU with tiny settings.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu_out}
# shellcheck source=benchmarks/gpu_common.sh
source benchmarks/gpu_common.sh
gpu_setup
export MRDIFF="python3 -m mrdiff_cli.cli.main"
export MRDIFF_CORPUS=$PWD/data/corpus
RUN=${RUN:-runs/prior_gpu}
# 1. training, cut at TRAIN_S seconds (the bundle of the last checkpoint stays)
timeout "${TRAIN_S:-360}" env CORPUS=data/corpus STEPS="${STEPS:-3000}" benchmarks/train_gpu.sh "$RUN" > "$OUT/train.jsonl" 2> "$OUT/train.err"
echo "training exit $? (124 = cut at TRAIN_S)" >> "$OUT/machine.txt"
if [ ! -f "$RUN/bundle/model.safetensors" ]; then
  echo "no bundle was written" >> "$OUT/machine.txt"
  exit 1
fi
cp "$RUN/bundle/config.json" "$OUT/candidate_config.json"
# 2. the candidate against the bundled prior, tune split, same slices and lambdas
S=${SETTINGS:-8:128:poisson:8,8:128:equispaced:3.3,8:128:gaussian1d:8}
for M in candidate bundled; do
  MODEL=$([ "$M" = candidate ] && echo "$RUN/bundle" || echo mrdiff_cli/weights/score-brain-128)
  python3 benchmarks/reconstruct.py --split tune --fixed-lambda --model "$MODEL" --settings "$S" \
    --per-volume "${PER_VOLUME:-3}" --json "$OUT/tune_$M.json" > "$OUT/tune_$M.md" 2>&1
done
# 3. the candidate's weights as fp16, in parts the device tool can return
gpu_return_fp16 "$RUN/bundle"
ls -la "$OUT"
