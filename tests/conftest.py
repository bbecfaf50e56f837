"""Shared fixtures. S3 tests run against moto's ThreadedMotoServer on 127.0.0.1 (see tests/s3util.py)."""
from __future__ import annotations

import pytest

from tests.s3util import S3Env, moto_s3


@pytest.fixture(scope="session")
def s3() -> S3Env:
    """One fake S3 server for the session: ``.endpoint``, ``.bucket``, ``.storage_options``, ``.env`` (fake
    credentials + ``AWS_ENDPOINT_URL``, also set in os.environ while the session runs and restored after),
    ``.url(prefix=None)`` (``s3://bucket/<random prefix>``)."""
    pytest.importorskip("moto.server")
    with moto_s3() as env:
        yield env


@pytest.fixture
def s3_url(s3: S3Env) -> str:
    """A fresh, empty ``s3://bucket/<random>`` prefix on the session's fake S3."""
    return s3.url()


@pytest.fixture(params=["local", "s3"])
def folder_url(request, tmp_path) -> tuple[str, dict | None]:
    """(url, storage_options) of an empty folder, once on local disk and once on the fake S3."""
    if request.param == "local":
        return str(tmp_path / "folder"), None
    s3 = request.getfixturevalue("s3")
    return s3.url(), s3.storage_options


#: Fixtures that start or use a local Ray cluster, and the S3 (moto) fixtures.
RAY_FIXTURES = {"ray_local"}
S3_FIXTURES = {"s3", "s3_url"}
#: Test modules whose tests take seconds each (fits, Ray, subprocess CLIs, large fuzz runs): ``slow``, so that
#: ``pytest -m "not slow"`` is the quick core. Measured with ``--durations`` on the 2-core development machine.
SLOW_MODULES = {
    "tests/pipeline/", "tests/cli/test_single_image.py", "tests/archive/test_fuzz_archive.py",
    "tests/codec/test_fuzz_record.py", "tests/fitting/test_fit.py", "tests/fitting/test_fit_tricks.py",
    "tests/fitting/test_checkpoint.py", "tests/raster/test_cuda_backend.py", "tests/raster/test_raster_bench.py",
    "tests/bench/test_rd.py", "tests/bench/test_classic.py", "tests/bench/test_decode.py",
    "tests/init/test_bench_init.py", "tests/report/", "tests/test_api.py",
}
#: Single slow tests in otherwise quick modules (test function names).
SLOW_TESTS = {"test_quantisation_loss_is_small_on_a_fitted_case"}


def _module_source(item) -> str:
    try:
        return item.path.read_text()
    except OSError:
        return ""


def pytest_collection_modifyitems(config, items):
    """Apply the markers registered in pyproject.toml: ``ray``, ``s3``, ``browser``, ``slow``."""
    sources: dict = {}
    for item in items:
        rel = item.path.relative_to(config.rootpath).as_posix()
        src = sources.setdefault(rel, _module_source(item))
        names = set(getattr(item, "fixturenames", ()))
        params = getattr(getattr(item, "callspec", None), "params", {})
        if names & RAY_FIXTURES or "ray.init(" in src or "import ray" in src:
            item.add_marker(pytest.mark.ray)
        if names & S3_FIXTURES or params.get("folder_url") == "s3":
            item.add_marker(pytest.mark.s3)
        if rel.endswith("test_browser.py"):
            item.add_marker(pytest.mark.browser)
        if any(rel.startswith(m) for m in SLOW_MODULES) or item.originalname in SLOW_TESTS or {"ray", "s3", "browser"} & {
                m.name for m in item.iter_markers()}:
            item.add_marker(pytest.mark.slow)
