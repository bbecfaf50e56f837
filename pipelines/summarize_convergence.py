"""Summarise one or more `smartsplat bench convergence` results: final PSNR/SSIM of smart vs random init, and the
step ratio = (steps smart init needs to reach random init's PSNR at the last step) / (that last step).

    python pipelines/summarize_convergence.py pipelines/results/convergence-*.json
"""
from __future__ import annotations

import json
import sys


def first_step_reaching(steps: list[int], psnr: list[float], target: float) -> int | None:
    return next((s for s, p in zip(steps, psnr) if p >= target), None)


def main(paths: list[str]) -> None:
    rows = []
    for path in paths:
        for image in json.load(open(path))["per_image"]:
            smart, rand = image["curves"]["smart"], image["curves"]["random"]
            last = rand["steps"][-1]
            reach = first_step_reaching(smart["steps"], smart["psnr"], rand["psnr"][-1])
            rows.append((image["image"], smart["psnr"][-1], rand["psnr"][-1], smart["ssim"][-1], rand["ssim"][-1],
                         reach, last))
    print(f"{'image':40s} {'smart dB':>9s} {'random dB':>9s} {'smart SSIM':>10s} {'random SSIM':>11s} "
          f"{'smart steps to random@end':>26s}")
    for name, ps, pr, ss, sr, reach, last in rows:
        print(f"{name:40s} {ps:9.2f} {pr:9.2f} {ss:10.4f} {sr:11.4f} {str(reach):>19s} / {last}")
    n = len(rows)
    ratios = [r[5] / r[6] for r in rows if r[5] is not None]
    print(f"mean over {n} images: smart {sum(r[1] for r in rows) / n:.2f} dB, random {sum(r[2] for r in rows) / n:.2f}"
          f" dB (+{sum(r[1] - r[2] for r in rows) / n:.2f} dB); step ratio smart/random "
          f"{sum(ratios) / len(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f})")


if __name__ == "__main__":
    main(sys.argv[1:])
