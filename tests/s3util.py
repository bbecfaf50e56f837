"""A local S3 endpoint for tests: moto's ThreadedMotoServer on 127.0.0.1 (a real HTTP server, so subprocesses
and Ray workers can reach it too).

``with moto_s3() as s3: Folder(s3.url("x"), s3.storage_options)``; ``s3.env`` holds the AWS variables
(fake credentials, region, ``AWS_ENDPOINT_URL``) to give a subprocess or ``runtime_env={"env_vars": s3.env}``.
"""
from __future__ import annotations

import contextlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from typing import Iterator

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: Variables that would point boto at a real account or endpoint; cleared while the fake server runs.
_CLEARED = ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3")


@dataclass
class S3Env:
    """A running fake S3: ``endpoint`` (http://127.0.0.1:PORT), ``bucket``, ``storage_options`` (fsspec),
    ``env`` (environment variables that reach the same endpoint without storage_options)."""

    endpoint: str
    bucket: str
    storage_options: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)

    def url(self, prefix: str | None = None) -> str:
        """``s3://bucket/<prefix>``; a fresh random prefix if None (isolates tests sharing one server)."""
        return f"s3://{self.bucket}/{prefix or uuid.uuid4().hex[:12]}"

    def client(self):
        import boto3
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@contextlib.contextmanager
def fake_aws_env(endpoint: str) -> Iterator[dict]:
    """Set fake AWS credentials and ``AWS_ENDPOINT_URL`` in os.environ; restore everything afterwards."""
    env = dict(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=endpoint)
    saved = {k: os.environ.get(k) for k in (*env, *_CLEARED)}
    try:
        for k in _CLEARED:
            os.environ.pop(k, None)
        os.environ.update(env)
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def moto_s3(bucket: str = "smartsplat-test") -> Iterator[S3Env]:
    """Start a moto S3 server on a free port of 127.0.0.1, create ``bucket``, yield an :class:`S3Env`."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        with fake_aws_env(endpoint) as env:
            s3 = S3Env(
                endpoint=endpoint,
                bucket=bucket,
                storage_options={"key": "testing", "secret": "testing",
                                 "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}},
                env=env,
            )
            s3.client().create_bucket(Bucket=bucket)
            yield s3
    finally:
        server.stop()
