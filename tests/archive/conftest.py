"""Fixtures of the archive tests (helpers in archive_helpers.py)."""
from __future__ import annotations

import pytest

from tests.archive.archive_helpers import Built, build_archive


@pytest.fixture
def built(folder_url) -> Built:
    url, opts = folder_url
    return build_archive(url, opts)


@pytest.fixture
def local_built(tmp_path) -> Built:
    return build_archive(str(tmp_path / "arch"))
