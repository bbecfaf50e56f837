"""No secret value reaches a log, a file or the archive: a marker secret is grepped for everywhere."""
import os
from pathlib import Path

from smartsplat_dist.errors import EXIT_OK
from smartsplat_dist.io.storage import Folder
from smartsplat_dist.pipeline import compress_dataset, decode_archive
from smartsplat_dist.pipeline.driver import _forwarded_env

from .conftest import fast_config, tiny_photo

MARKER = "i9-MARKER-SECRET-5b8e0c2f"


def test_secret_reaches_workers_but_no_log_or_file(ray_local, s3, tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", MARKER)  # moto accepts any key; Ray was started without it
    assert MARKER not in _forwarded_env().values()
    src, arch, dec = s3.url(), s3.url(), s3.url()
    client = s3.client()
    for k in range(2):
        p = tmp_path / f"shot{k}.png"
        tiny_photo(k).save(p)
        client.upload_file(str(p), s3.bucket, f"{src.split('/', 3)[3]}/shot{k}.png")
    # The workers can only reach S3 with the driver's credentials: they got them (in memory).
    result = compress_dataset(src, arch, fast_config(), workers=1, images_per_shard=2, progress=False)
    assert result.exit_code == EXIT_OK and result.ok == 2
    assert decode_archive(arch, dec, workers=1, progress=False).exit_code == EXIT_OK

    session = Path(ray._private.worker._global_node.get_session_dir_path())
    files = [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.name.startswith("runtime_env_agent") for p in files)  # the log that used to hold it
    leaks = [str(p) for p in files if MARKER.encode() in p.read_bytes()]
    assert leaks == []
    for url in (arch, dec):
        folder = Folder(url, s3.storage_options)
        names = folder.list()
        assert names and not [n for n in names if MARKER.encode() in folder.read_bytes(n)]
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == MARKER
