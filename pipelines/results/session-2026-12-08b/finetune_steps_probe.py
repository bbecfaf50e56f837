"""Probe (session 2026-12-08b): record PSNR after the two fine-tunes with 15 / 30 / 50 steps each, on budget-mode fits.

    DATA=../shared/data/photos-768 FITS=/tmp/fits python finetune_steps_probe.py 300 15,30,50 50,100,200 \
        God-Rays.png Kleiber_by_Lukas_Baubkus.png Sea-of-Lanterns.png White-Flower.png > finetune-steps-300.jsonl
    (and ``370 15`` for the same total steps: finetune-steps-370.jsonl; with GROWTH=1.3 or 0.95 in the
    environment, budget mode's N pricing factor api.FIT_BYTES_GROWTH, default 1.1: finetune-steps-300-growth*.jsonl)

Each line: the fit's PSNR, the rate-controlled record's ("rc"), then per fine-tune length
(after the shapes fine-tune, after the colour fine-tune, seconds). Imports pipelines/_photos.py from its own place;
run it with the project's .venv python.
"""
import json, os, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))  # pipelines/
from _photos import budget_fit
from smartsplat_dist import api
from smartsplat_dist.codec import CodecConfig
from smartsplat_dist.codec.limits import UNLIMITED
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.fitting import psnr
from smartsplat_dist.io.images import load_image
steps = int(sys.argv[1]); fts = [int(v) for v in sys.argv[2].split(',')]
for name in sys.argv[4:]:
    px = load_image(os.path.join(os.environ['DATA'], name)).pixels
    for cr in map(float, sys.argv[3].split(',')):
        g, st, meta, budget = budget_fit(px, cr, steps, 'cpu', os.environ['FITS'], name, 0, float(os.environ.get('GROWTH', api.FIT_BYTES_GROWTH)))
        rec, used = api._encode_within_budget(g, meta, CodecConfig(), budget)
        score = lambda r: round(psnr(api.decode_image(r, backend='cpu', limits=UNLIMITED), px), 3)
        row = {"image": name, "cr": cr, "steps": steps, "fit": round(st["psnr_last_step"], 3), "rc": score(rec)}
        for f in fts:
            config = EncodeConfig(cr=cr, color_finetune_steps=f).with_overrides(steps=max(steps, 20 * f))
            t = time.time()
            r2, c2 = api._finetune_shapes(rec, used, g, meta, px, config, 'cpu', budget)
            r3, c3 = api._finetune_colors(r2, c2, meta, px, config, 'cpu', budget)
            row[f"ft{f}"] = (score(r2), score(r3), round(time.time() - t, 1))
        print(json.dumps(row), flush=True)
