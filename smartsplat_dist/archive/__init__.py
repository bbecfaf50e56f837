"""The sharded archive (docs/design.md §6): staging, shard tars with commit markers, manifest, reading and verifying.

Write: ``w = ArchiveWriter(folder, run_config, listing); w.open(); w.stage(id, record, row) ...;
w.commit_shard(k, ids_of_shard_k); w.write_manifest()``. Ids: ``image_id_for`` / ``image_ids_for``; shard plan:
``plan_shards(ids, images_per_shard)``. Read: ``a = open_archive(url); a.get(id)``. Check: ``verify_archive(url)``,
``archive_status(url)``.
"""
from .layout import (
    MANIFEST, MANIFEST_FIELDS, RUN_JSON, check_id, image_id_for, image_ids_for, listing_digest, plan_shards,
    shard_marker_name, shard_tar_name, staged_record_name, staged_row_name,
)
from .reader import Archive, Location, MissingImageError, open_archive, read_manifest, read_record
from .status import archive_status
from .verify import VerifyReport, verify_archive
from .markers import read_markers, read_run_json, read_staged
from .writer import ArchiveWriter, StagingError, stage, stage_failure, unstage

__all__ = [
    "Archive", "ArchiveWriter", "Location", "MANIFEST", "MANIFEST_FIELDS", "MissingImageError", "RUN_JSON", "StagingError",
    "VerifyReport", "archive_status", "check_id", "image_id_for", "image_ids_for", "listing_digest",
    "open_archive", "plan_shards", "read_manifest", "read_markers", "read_record", "read_run_json",
    "read_staged", "shard_marker_name", "shard_tar_name", "stage", "stage_failure", "staged_record_name",
    "staged_row_name", "unstage", "verify_archive",
]
