"""Bjøntegaard delta rate / PSNR against cases with known answers."""
import math

import bjontegaard
import numpy as np
import pytest

from smartsplat_dist.bench.bdrate import METHODS, bd_psnr, bd_quality, bd_rate
from smartsplat_dist.errors import ConfigError

RATE = [0.1, 0.25, 0.5, 1.0, 2.0]
PSNR = [26.0, 29.5, 32.0, 35.2, 38.1]


@pytest.mark.parametrize("method", METHODS)
def test_identical_curves_give_zero(method):
    assert bd_rate(RATE, PSNR, RATE, PSNR, method) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATE, PSNR, RATE, PSNR, method) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("factor, expected", [(0.5, -50.0), (2.0, 100.0), (0.8, -20.0)])
def test_constant_rate_factor(method, factor, expected):
    test_rate = [r * factor for r in RATE]
    assert bd_rate(RATE, PSNR, test_rate, PSNR, method) == pytest.approx(expected, abs=1e-7)
    # Swapping roles inverts the factor.
    assert bd_rate(test_rate, PSNR, RATE, PSNR, method) == pytest.approx((1 / factor - 1) * 100, abs=1e-7)


@pytest.mark.parametrize("method", METHODS)
def test_linear_curves_closed_form(method):
    # ref: ln r = a + b q ; test: ln r = a2 + b2 q. Mean of the difference over [lo, hi] is
    # (a2 - a) + (b2 - b) (lo + hi) / 2, exactly, for both interpolations.
    a, b, a2, b2 = -9.0, 0.25, -8.0, 0.21
    q_ref = np.array([28.0, 31.0, 34.0, 37.0])
    q_test = np.array([30.0, 32.0, 35.0, 39.0])
    r_ref, r_test = np.exp(a + b * q_ref), np.exp(a2 + b2 * q_test)
    lo, hi = 30.0, 37.0
    expected = (math.exp((a2 - a) + (b2 - b) * (lo + hi) / 2) - 1) * 100
    assert bd_rate(r_ref, q_ref, r_test, q_test, method) == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_bd_psnr_of_a_half_rate_curve(method):
    # q = c + d ln r: halving the rate of every point raises quality at a fixed rate by d ln 2.
    c, d = 40.0, 4.5
    r = np.array([0.1, 0.3, 0.9, 2.7])
    q = c + d * np.log(r)
    assert bd_quality(r, q, r / 2, q, method) == pytest.approx(d * math.log(2), rel=1e-9)
    assert bd_quality(r, q, r, q - 1.5, method) == pytest.approx(-1.5, abs=1e-9)


def test_order_of_points_does_not_matter():
    perm = [3, 0, 4, 1, 2]
    r2 = [RATE[i] * 0.7 for i in perm]
    q2 = [PSNR[i] + 0.3 for i in perm]
    a = bd_rate(RATE, PSNR, [r * 0.7 for r in RATE], [p + 0.3 for p in PSNR])
    assert bd_rate(RATE, PSNR, r2, q2) == pytest.approx(a, rel=1e-12)
    assert a < -30  # better quality at 0.7x the rate is well over 30% savings


def test_better_codec_is_negative_and_poly_agrees_with_pchip_on_smooth_data():
    q = np.linspace(28, 38, 5)
    r_ref = np.exp(0.02 * (q - 20) ** 2 - 4)
    r_test = r_ref * np.exp(-0.15 - 0.01 * (q - 28))
    p = bd_rate(r_ref, q, r_test, q, "pchip")
    s = bd_rate(r_ref, q, r_test, q, "poly")
    expected = (math.exp(-0.15 - 0.01 * 5) - 1) * 100  # the log-ratio is linear: its mean is at mid-range
    assert p == pytest.approx(expected, rel=1e-6) and s == pytest.approx(expected, rel=1e-6)


def test_no_overlap_is_nan():
    assert math.isnan(bd_rate([1, 2], [30, 31], [1, 2], [35, 36]))
    assert math.isnan(bd_quality([1, 2], [30, 31], [10, 20], [30, 31]))


def test_bad_inputs_raise():
    with pytest.raises(ConfigError, match="at least 2"):
        bd_rate([1], [30], [1, 2], [30, 31])
    with pytest.raises(ConfigError, match="> 0"):
        bd_rate([0, 1], [30, 31], [1, 2], [30, 31])
    with pytest.raises(ConfigError, match="rates but"):
        bd_rate([1, 2, 3], [30, 31], [1, 2], [30, 31])
    with pytest.raises(ConfigError, match="unknown BD method"):
        bd_rate(RATE, PSNR, RATE, PSNR, "akima-ish")


@pytest.mark.parametrize(("method", "theirs"), [("pchip", "pchip"), ("poly", "cubic")])
def test_bd_rate_and_quality_match_the_bjontegaard_package(method, theirs):
    """The ``bjontegaard`` package as an independent oracle: its ``pchip`` is our pchip, its ``cubic`` (one cubic
    polynomial through all points, VCEG-M33) our ``poly``."""
    ref_rate, ref_q = [0.1, 0.2, 0.4, 0.8], [28.0, 31.0, 34.0, 36.5]
    test_rate, test_q = [0.09, 0.17, 0.33, 0.7], [28.3, 31.2, 34.4, 36.9]
    want = bjontegaard.bd_rate(ref_rate, ref_q, test_rate, test_q, method=theirs)
    assert want < -10  # a real difference between the curves
    assert bd_rate(ref_rate, ref_q, test_rate, test_q, method) == pytest.approx(want, abs=1e-9)
    want_q = bjontegaard.bd_psnr(ref_rate, ref_q, test_rate, test_q, method=theirs)
    assert bd_quality(ref_rate, ref_q, test_rate, test_q, method) == pytest.approx(want_q, abs=1e-9)
