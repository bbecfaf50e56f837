"""Probe (session 2026-12-08b): the codec's step ratios per image. Rate control scales every step by one factor;
this starts it from other ratios (scale step x2 / x0.5, colour step x1.41 / x0.71, rotation tolerance x2) and
reports the record PSNR before and after the fine-tunes, and the bytes.

    DATA=../shared/data/photos-768 FITS=/tmp/fits python step_ratios_probe.py 50,100 \
        God-Rays.png Kleiber_by_Lukas_Baubkus.png Sea-of-Lanterns.png White-Flower.png > step-ratios-per-image.jsonl

(1000-step fits, saved in FITS and reused.)
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
base = CodecConfig()
variants = {"base": base, "scale x2": base.replace(scale_step=base.scale_step * 2), "scale x0.5": base.replace(scale_step=base.scale_step / 2),
            "colour x1.41": base.replace(color_step=base.color_step * 2 ** 0.5), "colour x0.71": base.replace(color_step=base.color_step / 2 ** 0.5),
            "rot x2": base.replace(rotation_tolerance=base.rotation_tolerance * 2)}
for name in sys.argv[2:]:
    px = load_image(os.path.join(os.environ['DATA'], name)).pixels
    for cr in map(float, sys.argv[1].split(',')):
        g, st, meta, budget = budget_fit(px, cr, 1000, 'cpu', os.environ['FITS'], name, 0)
        config = EncodeConfig(cr=cr).with_overrides(steps=1000)
        score = lambda r: round(psnr(api.decode_image(r, backend='cpu', limits=UNLIMITED), px), 3)
        row = {"image": name, "cr": cr, "fit": round(st["psnr_last_step"], 3)}
        for v, codec in variants.items():
            rec, used = api._encode_within_budget(g, meta, codec, budget)
            pre = score(rec)
            r2, c2 = api._finetune_shapes(rec, used, g, meta, px, config, 'cpu', budget)
            r3, c3 = api._finetune_colors(r2, c2, meta, px, config, 'cpu', budget)
            row[v] = (pre, score(r3), len(r3))
        print(json.dumps(row), flush=True)
