"""Errors a user can cause and the CLI reports in one line (no traceback)."""
from __future__ import annotations

#: Exit codes of the ``smartsplat`` command.
EXIT_OK = 0
EXIT_ERROR = 2  # expected error: bad input, bad usage, damaged record
EXIT_PARTIAL = 3  # the job ran but some items failed (listed in the manifest and on screen)
EXIT_DAMAGED = 4  # verify found damaged pieces


class SmartsplatError(Exception):
    """Base of every expected error; ``str(err)`` is the whole message shown to the user."""


class ImageError(SmartsplatError):
    """An input image is missing, unreadable, truncated, not an image, or over the pixel limit."""


class RecordError(SmartsplatError):
    """A record (the per-image bitstream) is malformed, truncated, of an unknown version, or fails its checksum."""


class ArchiveError(SmartsplatError):
    """An archive is damaged, inconsistent, or was made with a different configuration."""


class ConfigError(SmartsplatError):
    """A setting is out of range or inconsistent."""
