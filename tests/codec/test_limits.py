"""Decode limits: forged records (valid CRC) asking for too much are refused before the work, in one line."""
import math

import pytest
import torch

from smartsplat_dist.api import decode_image
from smartsplat_dist.cli import main
from smartsplat_dist.codec import decode_record, read_meta
from smartsplat_dist.codec.limits import DecodeLimits, check_render, parse_limit_args
from smartsplat_dist.errors import EXIT_ERROR, ConfigError, RecordError

from .forge import forge_record

HUGE = forge_record(2**20, 2**20, 0)  # 136 bytes asking for a 3 TiB output
FOREVER = forge_record(4096, 4096, 20000, scale_lo=40.0, scale_hi=40.0)  # e**40 px Gaussians
PARSE = forge_record(8192, 8192, 2**25)  # 35 KB of all-zero LZMA streams for 2**25 Gaussians


def test_forged_records_are_what_the_review_found():
    assert len(HUGE) == 136 and len(PARSE) < 40_000
    with pytest.raises(RecordError, match="max_pixels"):
        read_meta(HUGE)


@pytest.mark.parametrize("record, limit", [(HUGE, "max_pixels"), (PARSE, "max_gaussians")])
def test_header_limits_refuse_before_decompressing(record, limit):
    with pytest.raises(RecordError, match=limit):
        decode_record(record)


def test_stream_expansion_bounds_parse_work():
    rec = forge_record(4096, 4096, 2**21)  # under max_gaussians, but 15 MB of streams from a few KB
    with pytest.raises(RecordError, match="max_stream_expansion"):
        decode_record(rec)
    g, meta = decode_record(rec, DecodeLimits(max_stream_expansion=1e6))
    assert len(g) == 2**21


def test_the_default_limits_admit_the_largest_gaussian_a_fit_keeps():
    """The fit caps scales at the image diagonal: such a Gaussian, at 45 degrees on a square image (the largest
    footprint relative to the long side), decodes and renders under the default limits."""
    from smartsplat_dist.codec import RecordMeta, encode_record
    from smartsplat_dist.fitting import FitConfig
    from smartsplat_dist.model import Gaussians

    side = 512
    cap = FitConfig().max_scale * math.hypot(side, side)
    g = Gaussians(torch.tensor([[256.0, 256.0]]), torch.tensor([[cap, cap]]), torch.tensor([math.pi / 4]),
                  torch.tensor([[0.2, 0.3, 0.4]]))
    out = decode_image(encode_record(g, RecordMeta(side, side)), backend="cpu")
    assert out.shape == (side, side, 3)


def test_render_cost_limits():
    with pytest.raises(RecordError, match="max_footprint"):
        decode_image(FOREVER, backend="cpu")
    # Big but finite footprints, each covering the whole 64x64 image: overlap = N.
    wide = forge_record(64, 64, 200, scale_lo=4.0, scale_hi=4.0)
    with pytest.raises(RecordError, match="max_overlap"):
        decode_image(wide, backend="cpu")
    out = decode_image(wide, backend="cpu", limits=DecodeLimits(max_overlap=1000))
    assert out.shape == (64, 64, 3)


@pytest.mark.parametrize("scale", [math.inf, math.nan, 0.0, -1.0])
def test_bad_scale_is_a_config_error(scale):
    with pytest.raises(ConfigError, match="scale"):
        decode_image(forge_record(8, 8, 1), scale=scale)


def test_output_over_max_pixels():
    with pytest.raises(RecordError, match="max_pixels"):
        decode_image(forge_record(8, 8, 1), scale=1e300)


def test_real_record_passes(tiny_record):
    g, meta = decode_record(tiny_record)
    check_render(g, meta.height, meta.width)


@pytest.fixture
def tiny_record():
    from tests.archive.archive_helpers import make_record

    return make_record(1)


@pytest.mark.parametrize("record, args, needle", [
    (HUGE, [], "max_pixels"), (FOREVER, [], "max_footprint"), (PARSE, [], "max_gaussians"),
    (forge_record(8, 8, 1), ["--scale", "inf"], "scale"), (forge_record(8, 8, 1), ["--scale", "1e300"], "max_pixels"),
])
def test_render_cli_one_line_exit_2(tmp_path, capsys, record, args, needle):
    path = tmp_path / "in.ssplat"
    path.write_bytes(record)
    assert main(["render", str(path), "-o", str(tmp_path / "out.png"), "--backend", "cpu", *args]) == EXIT_ERROR
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out.png").exists()


def test_limit_flag_raises_a_limit(tmp_path, monkeypatch):
    monkeypatch.delenv("SMARTSPLAT_DECODE_LIMITS", raising=False)
    assert parse_limit_args(["max_overlap=1000"]).max_overlap == 1000
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_limit_args(["nonsense=1"])
    path = tmp_path / "wide.ssplat"
    path.write_bytes(forge_record(64, 64, 200, scale_lo=4.0, scale_hi=4.0))
    assert main(["render", str(path), "-o", str(tmp_path / "o.png"), "--backend", "cpu",
                 "--limit", "max_overlap=1000"]) == 0
    assert (tmp_path / "o.png").exists()
