#!/usr/bin/env bash
# Prior v2 training in one command, sized for ~8 minutes on one large GPU (bf16 autocast, batch 128,
# 64-channel UNet, 128² patches at 0.8/1.1/1.5/2 mm, elastic + anisotropic-scale augmentation), resumable:
# run it again to continue from OUT/checkpoint. The corpus (benchmarks/corpus.py) must be at $CORPUS; on a
# machine without network copy it into the repository first (./data/ is git-ignored; about 15 MB):
#
#     cp -r /work/data/corpus data/corpus && CORPUS=data/corpus benchmarks/train_gpu.sh runs/prior_gpu
#
# Then compare on the tune set (benchmarks/reconstruct.py / superres.py --split tune --model OUT/bundle) and
# bundle it only if it wins. Environment: STEPS (3000), VOXELS (0.8,1.1,1.5,2), BATCH (128), CH (64), LR (2e-4), DEVICE (cuda),
# INIT (empty: from scratch; e.g. mrdiff_cli/weights/score-brain-128 to fine-tune the 32-channel default,
# which needs CH=32), EXTRA (more `mrdiff train` options). Tested on the CPU with STEPS=2 BATCH=2 CH=8.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/prior_gpu}
CORPUS=${CORPUS:-/work/data/corpus}
MRDIFF=${MRDIFF:-mrdiff}
if [ ! -d "$CORPUS/train" ]; then
  python benchmarks/corpus.py --out "$CORPUS"
fi
INIT_ARGS=()
if [ -n "${INIT:-}" ]; then INIT_ARGS=(--init-from "$INIT"); fi
# shellcheck disable=SC2086
$MRDIFF train score "$CORPUS/train" --val "$CORPUS/tune" --out "$OUT" \
  --voxels "${VOXELS:-0.8,1.1,1.5,2}" --elastic 0.03 --aniso-scale 0.08 \
  --steps "${STEPS:-3000}" --batch-size "${BATCH:-128}" --base-channels "${CH:-64}" --lr "${LR:-2e-4}" \
  --warmup 200 --checkpoint-every 250 --val-every 1000 --device "${DEVICE:-cuda}" --resume \
  "${INIT_ARGS[@]}" ${EXTRA:-} --json
