#!/usr/bin/env bash
# Create ./.venv with the right PyTorch for this machine and install smartsplat_dist into it.
#
#   bash infra/setup-env.sh          # runtime (CUDA extras when an NVIDIA GPU is visible)
#   bash infra/setup-env.sh --test   # + test dependencies (pytest, moto, triton for the interpreter tests)
#
# Torch choice: with an NVIDIA driver visible (nvidia-smi lists a GPU) the default PyPI build of torch, which
# bundles CUDA and Triton; without one, TORCH_SPEC (default torch==2.13.0, the CPU build this project is
# developed and tested with). Override with TORCH_SPEC=..., or PIP_INDEX_URL / PIP_EXTRA_INDEX_URL for another
# build. PYTHON picks the interpreter (default python3, >= 3.10).
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[ "${1:-}" = "--test" ] && extras="test"
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "setup: NVIDIA GPU found: installing the CUDA build of torch" >&2
  torch_spec=${TORCH_SPEC:-torch}
  extras=${extras:+$extras,}cuda
else
  echo "setup: no NVIDIA GPU: installing the CPU build of torch" >&2
  torch_spec=${TORCH_SPEC:-torch==2.13.0}
fi
# torch first and on its own, so that nothing below pulls a different build in.
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" "$torch_spec"
"${pip[@]}" -c infra/constraints.txt -e ".${extras:+[$extras]}"
echo "setup: ready: $(.venv/bin/python -c 'import torch, smartsplat_dist; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "cpu")')" >&2
