#!/usr/bin/env bash
# Prepare the one-command GPU session (benchmarks/gpu_session.sh). Run it HERE, on the CPU machine (it needs the
# package registries): it copies the corpus into ./data/corpus and downloads into ./.whl the wheels of mrdiff's
# dependencies that the GPU image lacks (nibabel, pydicom, ismrmrd, sigpy, pywavelets and their pure-Python needs;
# the image has torch, numpy, scipy, h5py, typer, rich, safetensors, huggingface_hub, numba, tqdm). Both folders
# are git-ignored; the device tool's `carry` takes them along (about 20 MB together).
#
#     benchmarks/gpu_prepare.sh      # then, with the device tool:
#     run(command="bash benchmarks/gpu_session.sh", carry=["data/corpus", ".whl"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-/work/data/corpus}
if [ ! -d "$CORPUS/train" ]; then
  python benchmarks/corpus.py --out "$CORPUS"
fi
mkdir -p data
rm -rf data/corpus
cp -r "$CORPUS" data/corpus
EXCLUDE=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$EXCLUDE")"
grep -qx '/.whl/' "$EXCLUDE" 2>/dev/null || echo '/.whl/' >> "$EXCLUDE"
rm -rf .whl
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  nibabel==5.4.2 pydicom==3.0.2 ismrmrd==1.15.0 xsdata==26.10 sigpy==0.1.27 pywavelets==1.9.0 \
  importlib-resources==7.1.0
du -sh data/corpus .whl
