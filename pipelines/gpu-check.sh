#!/usr/bin/env bash
# GPU check: cuda vs cpu backend (image, gradients), fit step time and peak GPU memory at 768x512, 4K and 16K,
# projected hours per DIV16K image at 50,000 steps. Without CUDA (or with --dry-run) it prints what it would do.
#   bash pipelines/gpu-check.sh [--dry-run] [--steps 20] [--cr 100] [--out bench-results/gpu.json]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec "$PY" -c 'import sys; from smartsplat_dist.cli import main; sys.exit(main())' bench gpu "$@"
