"""Fault drill: how many fit steps a SIGKILLed actor costs when its fit checkpoints.

    python pipelines/sigkill_drill.py [--steps 40] [--kill-at 25]

One 48x32 crop of a shipped example photo, CPU actor, a checkpoint after every step; the ``kill-actor`` fault
``os._exit``\\ s the actor at the fit's first progress report (step ``--kill-at``), the driver retries the image on
a new actor, which continues from the checkpoint. Prints one JSON line: the step the retry resumed after and the
steps it ran.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
from pathlib import Path

from PIL import Image

from smartsplat_dist.archive import open_archive
from smartsplat_dist.config import EncodeConfig
from smartsplat_dist.pipeline import compress_dataset

EXAMPLES = Path(__file__).resolve().parents[1] / "smartsplat_dist" / "examples"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--kill-at", type=int, default=25)
    a = p.parse_args()
    d = Path(tempfile.mkdtemp(prefix="sigkill-drill-"))
    (d / "src").mkdir()
    with Image.open(sorted(EXAMPLES.glob("*.png"))[0]) as im:
        im.convert("RGB").crop((0, 0, 48, 32)).save(d / "src" / "img0.png")
    c = EncodeConfig(cr=20.0)
    c = c.replace(fit=dataclasses.replace(c.fit, steps=a.steps, log_every=a.kill_at))
    os.environ["SMARTSPLAT_FAULT"] = "kill-actor:img0:1"
    os.environ["SMARTSPLAT_FAULT_DIR"] = str(d / "faults")
    r = compress_dataset(str(d / "src"), str(d / "arch"), c, workers=1, gpus_per_worker=0, num_cpus=1,
                         progress=False, checkpoint_minutes=1e-9)
    row = open_archive(str(d / "arch")).row("img0")
    print(json.dumps({"exit": r.exit_code, "actor_restarts": r.actor_restarts, "steps": row["steps"],
                      "resumed_from_step": row["resumed_from_step"], "steps_run_after_kill": row["steps_run"]}))


if __name__ == "__main__":
    main()
