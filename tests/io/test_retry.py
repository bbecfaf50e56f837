"""Transient storage errors are retried with backoff; permanent ones are not."""
from __future__ import annotations

import errno

import pytest

from smartsplat_dist.io.retry import RetryPolicy, is_transient, with_retries


class FakeClientError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.response = {"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": 503}}


def test_transient_errors_are_retried_then_succeed():
    calls, waits = [], []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionResetError(errno.ECONNRESET, "reset by peer")
        if len(calls) == 2:
            raise OSError("wrapped") from FakeClientError("SlowDown")
        return b"data"

    assert with_retries(flaky, RetryPolicy(attempts=5, base_seconds=1.0), sleep=waits.append) == b"data"
    assert len(calls) == 3 and len(waits) == 2 and 0.75 <= waits[0] <= 1.25 and 1.5 <= waits[1] <= 2.5


@pytest.mark.parametrize("err", [FileNotFoundError("gone"), PermissionError("denied"), ValueError("not an image")])
def test_permanent_errors_fail_at_once(err):
    calls = []

    def fail():
        calls.append(1)
        raise err

    with pytest.raises(type(err)):
        with_retries(fail, RetryPolicy(attempts=5), sleep=lambda s: None)
    assert len(calls) == 1 and not is_transient(err)


def test_gives_up_after_the_last_attempt():
    calls = []

    def always():
        calls.append(1)
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError):
        with_retries(always, RetryPolicy(attempts=3), sleep=lambda s: None)
    assert len(calls) == 3
