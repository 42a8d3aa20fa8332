# Shared steps of the one-command GPU runs (sourced by benchmarks/gpu_session.sh and benchmarks/gpu_complex.sh,
# which have already cd'ed to the repository root and set OUT).
#   gpu_setup:        installs the carried wheels (.whl, from benchmarks/gpu_prepare.sh) into /tmp/site, sets
#                     PYTHONPATH and writes the machine description to $OUT/machine.txt
#   gpu_return_fp16 BUNDLE: the bundle's weights as fp16 in parts under 15 MiB in $OUT (the device tool returns
#                     files of at most 16 MiB); reassemble with cat model.fp16.safetensors.part-* > model.safetensors

gpu_setup() {
  mkdir -p "$OUT"
  export PYTHONUNBUFFERED=1
  if [ -d .whl ] && ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
      && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
  fi
  export PYTHONPATH=$PWD:${PYTHONPATH:-}
  (nvidia-smi || true) > "$OUT/machine.txt" 2>&1
  python3 -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), platform.processor())" >> "$OUT/machine.txt" 2>&1
}

gpu_return_fp16() {
  python3 - "$1/model.safetensors" "$OUT/model.fp16.safetensors" <<'PY'
import sys
from safetensors.torch import load_file, save_file
t = load_file(sys.argv[1])
save_file({k: (v.half() if v.is_floating_point() else v) for k, v in t.items()}, sys.argv[2])
PY
  split -b 15m -d "$OUT/model.fp16.safetensors" "$OUT/model.fp16.safetensors.part-" && rm "$OUT/model.fp16.safetensors"
}
