#!/usr/bin/env bash
# Every benchmark in quick mode, as run for the README's "Results" (CPU machine). Each prints a table and writes
# JSON (and the rd plot) under bench-results/. Full mode: drop --quick (hours on a CPU; meant for a GPU node).
set -euo pipefail
cd "$(dirname "$0")/.."
S=".venv/bin/python -m smartsplat_dist"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}     # one torch thread per process: see README "CPU threads"
# The benchmark photographs (photos-768/, photos-2k/): the development machine keeps them in shared/data beside
# the checkout; without the folder each benchmark falls back to the example photos shipped in the package.
export SMARTSPLAT_BENCH_DATA=${SMARTSPLAT_BENCH_DATA:-$(cd .. && pwd)/shared/data}
$S bench raster --quick --threads 1
$S bench init --quick
$S bench convergence --quick --backend cpu --threads 1
$S bench rd --quick --cr 20 50 100 200 500 --backend cpu
$S bench decode --quick
$S bench pipeline --quick
