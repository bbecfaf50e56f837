#!/usr/bin/env bash
# Create ./.venv with the right PyTorch for this machine and install smartsplat_dist into it.
#
#   bash infra/setup-env.sh          # runtime (CUDA extras when an NVIDIA GPU is visible)
#   bash infra/setup-env.sh --test   # + test dependencies (pytest, moto, triton for the interpreter tests)
#
# Torch choice: with an NVIDIA driver visible (nvidia-smi lists a GPU) the default PyPI build of torch, which
# bundles CUDA and Triton. Without one, TORCH_SPEC (default torch==2.13.0) from PyTorch's CPU wheel index
# (download.pytorch.org/whl/cpu, about 200 MB) when that index answers; when it does not, the same pin from the
# indexes pip is configured with: that is a CPU build only where a local wheel folder supplies one (as on the
# machines this project is developed on); from plain PyPI it is the multi-GB CUDA build, which also runs on CPU.
# The last line says which build was installed. Override with TORCH_SPEC=..., or PIP_INDEX_URL /
# PIP_EXTRA_INDEX_URL for another build. PYTHON picks the interpreter (default python3, >= 3.10).
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
  torch_spec=${TORCH_SPEC:-torch==2.13.0}
  cpu_index=https://download.pytorch.org/whl/cpu
  if .venv/bin/python -c "import urllib.request as u; u.urlopen('$cpu_index/', timeout=5)" >/dev/null 2>&1; then
    echo "setup: no NVIDIA GPU: $torch_spec from PyTorch's CPU index" >&2
    torch_index=(--index-url "$cpu_index" --extra-index-url https://pypi.org/simple)
  else
    echo "setup: no NVIDIA GPU, and PyTorch's CPU index does not answer: $torch_spec from pip's own indexes" \
         "(a CPU build only where a local wheel provides one; see the last line)" >&2
    torch_index=()
  fi
fi
# torch first and on its own, so that nothing below pulls a different build in.
.venv/bin/python -c "import torch" 2>/dev/null || "${pip[@]}" ${torch_index[@]+"${torch_index[@]}"} "$torch_spec"
"${pip[@]}" -c infra/constraints.txt -e ".${extras:+[$extras]}"
echo "setup: ready: $(.venv/bin/python -c 'import torch, smartsplat_dist; print("torch", torch.__version__,
  "(CUDA " + torch.version.cuda + " build)" if torch.version.cuda else "(CPU build)",
  "running on", "cuda" if torch.cuda.is_available() else "cpu")')" >&2
