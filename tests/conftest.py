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
