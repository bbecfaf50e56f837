"""Retrying transient storage errors (throttling, reset connections, timeouts) with exponential backoff.

Only errors that a second try can cure are retried: a missing object, a permission problem, a bad image or an
image over the pixel limit fail at once (the caller turns them into a ``failed`` row). Everything else that is
an ``OSError`` of a network kind, a timeout, or a botocore/aiohttp connection or throttling error is transient.
"""
from __future__ import annotations

import errno
import random
import time
from dataclasses import dataclass
from typing import Callable, TypeVar

T = TypeVar("T")

_TRANSIENT_ERRNOS = {errno.ECONNRESET, errno.ECONNABORTED, errno.ECONNREFUSED, errno.ETIMEDOUT, errno.EPIPE,
                     errno.EAGAIN, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENETRESET}
#: S3 error codes that mean "try again" (throttling, a server hiccup).
_TRANSIENT_CODES = {"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "RequestTimeTooSkewed",
                    "InternalError", "ServiceUnavailable", "503", "500", "RequestLimitExceeded"}
_TRANSIENT_NAMES = {"EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError",
                    "ClientConnectorError", "ServerDisconnectedError", "ClientOSError", "ClientPayloadError",
                    "IncompleteReadError", "ResponseStreamingError", "ProtocolError"}


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; the k-th wait is ``base_seconds * 2**k`` (capped, ±25% jitter)."""

    attempts: int = 5
    base_seconds: float = 0.5
    max_seconds: float = 20.0


def is_transient(err: BaseException) -> bool:
    """True for errors a retry may cure (see the module doc); False for permanent ones."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)):
            return False
        if isinstance(err, (TimeoutError, ConnectionError)):
            return True
        if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
            return True
        if type(err).__name__ in _TRANSIENT_NAMES:
            return True
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
            if code in _TRANSIENT_CODES or status in ("500", "502", "503", "504"):
                return True
        err = err.__cause__ or err.__context__
    return False


def with_retries(fn: Callable[[], T], policy: RetryPolicy = RetryPolicy(),
                 on_retry: Callable[[int, BaseException, float], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()``, tried again after a transient error up to ``policy.attempts`` times in all.

    ``on_retry(attempt, error, wait_seconds)`` is told before each wait. The last error (or the first permanent
    one) is raised."""
    for attempt in range(1, max(1, policy.attempts) + 1):
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - classified below, re-raised unless transient
            if attempt >= policy.attempts or not is_transient(err):
                raise
            wait = min(policy.max_seconds, policy.base_seconds * 2 ** (attempt - 1))
            wait *= 1.0 + random.uniform(-0.25, 0.25)
            if on_retry is not None:
                on_retry(attempt, err, wait)
            sleep(wait)
    raise AssertionError("unreachable")


__all__ = ["RetryPolicy", "is_transient", "with_retries"]
