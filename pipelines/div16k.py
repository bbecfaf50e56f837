"""DIV16K (800 images, 16320 px wide) at the paper's CRs 50, 100, 200 and 500, one archive per CR.

    python pipelines/div16k.py s3://BUCKET/DIV16K/ s3://BUCKET/archives/ --address auto
    python pipelines/div16k.py /data/div16k-like /data/archives --cr 100 --steps 2000     # one CR, shorter fit

Re-running the same command resumes every unfinished archive (committed shards and staged images are kept).
The paper fits 50,000 steps (2.4-3.8 GPU hours per 16K image); ``--steps`` trades quality for time.
Paper results to compare with (PSNR dB / SSIM): CR 50 34.34/0.927, CR 100 33.00/0.912, CR 200 31.85/0.890,
CR 500 29.40/0.852.
"""
import sys

from _runs import run_sweep, sweep_parser

CRS = (50.0, 100.0, 200.0, 500.0)
STEPS = 50_000

if __name__ == "__main__":
    args = sweep_parser("div16k", CRS, STEPS, __doc__.splitlines()[0]).parse_args()
    sys.exit(run_sweep("div16k", args))
