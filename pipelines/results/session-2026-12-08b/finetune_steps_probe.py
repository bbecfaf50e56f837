"""Probe (session 2026-12-08b): record PSNR after the two fine-tunes with 15 / 30 / 50 steps each, on budget-mode fits.

    DATA=../shared/data/photos-768 FITS=/tmp/fits python finetune_steps_probe.py 300 15,30,50 50,100,200 \
        God-Rays.png Kleiber_by_Lukas_Baubkus.png Sea-of-Lanterns.png White-Flower.png > finetune-steps-300.jsonl
    (and ``370 15`` for the same total steps: finetune-steps-370.jsonl; with GROWTH=1.3 or 0.95 in the
    environment, budget mode's N pricing factor api.FIT_BYTES_GROWTH, default 1.1: finetune-steps-300-growth*.jsonl)

Each line: the fit's PSNR, the rate-controlled record's ("rc"), then per fine-tune length
(after the shapes fine-tune, after the colour fine-tune, seconds; as run the seconds of the two fine-tunes, now
with the rate control before them, about a second more). Imports pipelines/_photos.py from its own place;
run it with the project's .venv python.
As run against that session's encoder; against later code the encoder's steps include what came after.
"""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))  # pipelines/
from _photos import saved_fits
from smartsplat_dist import api
from smartsplat_dist.config import EncodeConfig
steps = int(sys.argv[1]); fts = [int(v) for v in sys.argv[2].split(',')]
pairs = [(name, cr) for name in sys.argv[4:] for cr in map(float, sys.argv[3].split(','))]
growth = float(os.environ.get('GROWTH', api.FIT_BYTES_GROWTH))
for fitted in saved_fits(os.environ['DATA'], os.environ['FITS'], pairs, steps, growth):
    score = lambda r: round(fitted.score(r), 3)
    row = {"image": fitted.name, "cr": fitted.cr, "steps": steps, "fit": round(fitted.stats["psnr_last_step"], 3)}
    for f in fts:
        config = EncodeConfig(cr=fitted.cr, color_finetune_steps=f).with_overrides(steps=max(steps, 20 * f))
        t = time.time()
        (rec, _), (r2, _), (r3, _) = fitted.records(config=config)
        row.setdefault("rc", score(rec))
        row[f"ft{f}"] = (score(r2), score(r3), round(time.time() - t, 1))
    print(json.dumps(row), flush=True)
