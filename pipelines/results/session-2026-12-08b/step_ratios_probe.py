"""Probe (session 2026-12-08b): the codec's step ratios per image. Rate control scales every step by one factor;
this starts it from other ratios (scale step x2 / x0.5, colour step x1.41 / x0.71, rotation tolerance x2) and
reports the record PSNR before and after the fine-tunes, and the bytes.

    DATA=../shared/data/photos-768 FITS=/tmp/fits python step_ratios_probe.py 50,100 \
        God-Rays.png Kleiber_by_Lukas_Baubkus.png Sea-of-Lanterns.png White-Flower.png > step-ratios-per-image.jsonl

(1000-step fits, saved in FITS and reused.)
As run against that session's encoder; against later code the encoder's steps include what came after.
"""
import json, os, sys
sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))  # pipelines/
from _photos import saved_fits
from smartsplat_dist.codec import CodecConfig
base = CodecConfig()
variants = {"base": base, "scale x2": base.replace(scale_step=base.scale_step * 2), "scale x0.5": base.replace(scale_step=base.scale_step / 2),
            "colour x1.41": base.replace(color_step=base.color_step * 2 ** 0.5), "colour x0.71": base.replace(color_step=base.color_step / 2 ** 0.5),
            "rot x2": base.replace(rotation_tolerance=base.rotation_tolerance * 2)}
pairs = [(name, cr) for name in sys.argv[2:] for cr in map(float, sys.argv[1].split(','))]
for f in saved_fits(os.environ['DATA'], os.environ['FITS'], pairs, 1000):
    row = {"image": f.name, "cr": f.cr, "fit": round(f.stats["psnr_last_step"], 3)}
    for v, codec in variants.items():
        (rec, _), _, (r3, _) = f.records(codec)
        row[v] = (round(f.score(rec), 3), round(f.score(r3), 3), len(r3))
    print(json.dumps(row), flush=True)
