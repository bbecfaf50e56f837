"""DIV8K at the paper's CRs 20, 50 and 100, one archive per CR.

    python pipelines/div8k.py s3://BUCKET/DIV8K/ s3://BUCKET/archives/ --address auto

Re-running the same command resumes. Paper results to compare with (PSNR dB): CR 20 33.26, CR 50 29.65,
CR 100 27.49 (50,000 steps).
"""
import sys

from _runs import run_sweep, sweep_parser

CRS = (20.0, 50.0, 100.0)
STEPS = 50_000

if __name__ == "__main__":
    args = sweep_parser("div8k", CRS, STEPS, __doc__.splitlines()[0]).parse_args()
    sys.exit(run_sweep("div8k", args))
